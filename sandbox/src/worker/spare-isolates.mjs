// @ts-check
// Fresh isolates made ahead of need, so that a new bundle's probe and a new tenant's first call
// do not wait for V8 to set up a heap. A spare has run nothing — isolated-vm's default context
// is all it holds — so handing it to a tenant is the same as making it at that moment, and it is
// handed out once. A few are kept for each of the memory limits asked for lately; they are made
// on the worker's thread (isolated-vm has no asynchronous constructor) when it has nothing in
// flight, so making them never delays a call.
import ivm from './isolated-vm.mjs'

/** @typedef {import('isolated-vm').Isolate} Isolate */

/** @param {number} memoryMb */
export function makeIsolate(memoryMb) {
  return new ivm.Isolate({
    memoryLimit: memoryMb,
    // isolated-vm's advice: a catastrophic error leaves the process unrecoverable. Exiting
    // lets the parent fail what this worker held and start a replacement.
    onCatastrophicError: () => process.exit(70),
  })
}

export class SpareIsolates {
  /**
   * @param {object} options
   * @param {() => boolean} options.busy whether the worker has work in flight (spares wait for a quiet moment)
   * @param {(memoryMb: number) => Isolate} [options.make]
   * @param {number} [options.perLimit] spares kept per memory limit
   * @param {number} [options.maxLimits] memory limits kept spares for (the latest asked for)
   * @param {number} [options.delayMs] how long after a take, or a busy moment, spares are made
   */
  constructor({ busy, make = makeIsolate, perLimit = 2, maxLimits = 2, delayMs = 5 }) {
    this.busy = busy
    this.make = make
    this.perLimit = perLimit
    this.maxLimits = maxLimits
    this.delayMs = delayMs
    /** @type {Map<number, Isolate[]>} memory limit → its spares (the latest asked for last) */
    this.spares = new Map()
    /** @type {NodeJS.Timeout | undefined} */
    this.timer = undefined
  }

  /**
   * A fresh isolate with this memory limit: a spare when there is one, else a new one.
   * @param {number} memoryMb
   * @returns {Isolate}
   */
  take(memoryMb) {
    const list = this.spares.get(memoryMb) ?? []
    this.spares.delete(memoryMb)
    this.spares.set(memoryMb, list)
    for (const [mb, old] of this.spares) {
      if (this.spares.size <= this.maxLimits) break
      this.spares.delete(mb)
      for (const iso of old) iso.dispose()
    }
    this.schedule()
    let spare = list.pop()
    while (spare?.isDisposed) spare = list.pop()
    return spare ?? this.make(memoryMb)
  }

  schedule() {
    if (this.timer) return this.timer.refresh()
    this.timer = setTimeout(() => this.refill(), this.delayMs)
    this.timer.unref()
  }

  refill() {
    this.timer = undefined
    for (const [mb, list] of this.spares) {
      while (list.length < this.perLimit) {
        if (this.busy()) return this.schedule()
        list.push(this.make(mb))
      }
    }
  }

  /** How many spares are ready (for stats). */
  get count() {
    let n = 0
    for (const list of this.spares.values()) n += list.length
    return n
  }

  disposeAll() {
    clearTimeout(this.timer)
    this.timer = undefined
    for (const list of this.spares.values()) for (const iso of list) iso.dispose()
    this.spares.clear()
  }
}
