// When a key's plugin code leaves the worker's event loop for isolated-vm's threads (ADR 0080
// decision 7, ADR 0108): twice long within ten minutes, the second time by this thread's own CPU
// clock too. The stretch runs for real (isolated-vm, this process's thread), around a stand-in
// worker; a whole sandbox shows the hostile case from outside.
import ivm from 'isolated-vm'
import t from 'tap'
import type { Test } from 'tap'
import { Sandbox } from '../src/index.js'
import { EventLoopKeys } from '../src/worker/event-loop-keys.mjs'
import type { Invocation } from '../src/worker/invocation.mjs'
import { enterStretch } from '../src/worker/stretches.mjs'
import { bodiesBundle } from './fixtures/bundles.js'
import { call } from './fixtures/harness.js'

const KEY = '["tenant-a",128]'

/** The parts of a worker a stretch on its thread uses, with the real rules of `keys`. */
function workerWith(keys: EventLoopKeys) {
  return {
    scheduler: { submit: (_tenant: string, run: (turn: { end(): void }) => void) => run({ end() {} }) },
    watchdog: { enterSync() {}, leaveSync() {} },
    syncSliceMs: keys.sliceMs,
    isSlow: (key: string) => keys.isSlow(key),
    markSlow: (key: string) => keys.markSlow(key),
    ranLong: (key: string, ownNs?: number) => keys.ranLong(key, ownNs),
    timed: (key: string) => keys.timed(key),
    threadCpuNs: () => keys.threadCpuNs(),
  }
}

function setup(t: Test, keys: EventLoopKeys) {
  const isolate = new ivm.Isolate({ memoryLimit: 32 })
  t.teardown(() => isolate.dispose())
  const context = isolate.createContextSync()
  const fn = (code: string) => context.evalSync(code, { reference: true }) as ivm.Reference<(ms?: number) => void>
  const echo = fn('() => {}')
  const burn = fn('(ms) => { const end = Date.now() + ms; while (Date.now() < end); }')
  const worker = workerWith(keys)
  /** Runs `ref` as one stretch of an invocation on this thread; returns the isolate's CPU time it was counted (ms). */
  const stretch = (ref: ivm.Reference<(ms?: number) => void>, args: number[] = []) => {
    const inv = {
      worker,
      tenantId: 'tenant-a',
      isoKey: KEY,
      rid: 1,
      token: 1,
      sync: true,
      done: false,
      cpuNs: 0,
      turn: null,
      iso: {
        disposed: false,
        host: { disposed: false, lock: (run: () => void) => run(), unlock() {} },
        cpuNs: () => isolate.cpuTime,
        pollRef: { applySync: () => 'result' },
      },
      onResult() {},
      onIsolateError(err: unknown) {
        throw err
      },
    }
    enterStretch(inv as unknown as Invocation, () => ({ ref, args, timeoutMs: 5000 }) as never)
    return inv.cpuNs / 1e6
  }
  /**
   * A stretch whose isolate clock counts what ran on another thread: isolated-vm runs something
   * else in the isolate on one of its threads (as it runs V8's own tasks for it), and this
   * thread waits for the isolate's lock meanwhile.
   */
  const inflated = async () => {
    const before = isolate.cpuTime
    const other = burn.apply(undefined, [60])
    // (its CPU clock moves once the other thread holds the isolate)
    while (isolate.cpuTime === before) {}
    const counted = stretch(echo)
    await other
    return counted
  }
  return { stretch, inflated, burn }
}

t.test('a stretch whose isolate clock counted work of another thread does not move its key', async (t) => {
  const keys = new EventLoopKeys({ sliceMs: 10 })
  t.not(keys.threadCpuNs(), null, "this thread's CPU clock is readable here")
  const { inflated } = setup(t, keys)
  const first = await inflated()
  t.ok(first > 10, `the isolate's clock counted ${first.toFixed(1)} ms for an empty function`)
  t.ok(keys.timed(KEY), "after a first long stretch, its key's stretches are timed by this thread's clock")
  for (let i = 0; i < 3; i++) {
    const counted = await inflated()
    t.ok(counted > 10, `again ${counted.toFixed(1)} ms by the isolate's clock`)
    t.notOk(keys.isSlow(KEY), 'the key stays on the event loop')
  }
})

t.test('plugin code that runs long on the thread twice moves its key, timed or not', async (t) => {
  const keys = new EventLoopKeys({ sliceMs: 10 })
  const { stretch, burn } = setup(t, keys)
  t.ok(stretch(burn, [150]) > 10, 'the first run was long by the isolate clock')
  t.notOk(keys.isSlow(KEY), 'once is not enough')
  t.ok(stretch(burn, [150]) > 10, 'the second too')
  t.ok(keys.isSlow(KEY), 'the second long run, timed by the thread too, moves the key')

  // Without a thread clock (no /proc), the isolate's clock and the wall clock decide, as before.
  const untimed = new EventLoopKeys({ sliceMs: 10, threadCpuNs: () => null })
  const other = setup(t, untimed)
  await other.inflated()
  t.notOk(untimed.isSlow(KEY), 'one is not enough')
  await other.inflated()
  t.ok(untimed.isSlow(KEY), 'two long stretches by the isolate clock move the key')
})

t.test('a key is timed for ten minutes after its first long stretch, and off the loop for thirty', async (t) => {
  let now = 0
  const keys = new EventLoopKeys({ sliceMs: 10, now: () => now, threadCpuNs: () => 0 })
  t.notOk(keys.timed(KEY), 'a key that never ran long is not timed')
  keys.ranLong(KEY)
  t.ok(keys.timed(KEY), 'after a long stretch it is')
  t.notOk(keys.ranLong(KEY, 4e6), 'timed at 4 ms of this thread: not long')
  now += 10 * 60_000
  t.notOk(keys.timed(KEY), 'ten minutes later it is no longer timed')
  t.notOk(keys.ranLong(KEY), 'and a long stretch is a first one again')
  t.ok(keys.ranLong(KEY, 30e6), '30 ms of this thread within ten minutes moves it')
  t.ok(keys.isSlow(KEY), 'off the event loop')
  now += 30 * 60_000
  t.notOk(keys.isSlow(KEY), 'back on the event loop after thirty minutes')
})

t.test('a hostile key that ran long on the event loop twice no longer blocks its worker', async (t) => {
  const sandbox = await Sandbox.create({ workers: 1 })
  t.teardown(() => sandbox.close())
  const plugin = bodiesBundle('@acme/long-runs', {
    burn: 'const end = Date.now() + input; while (Date.now() < end) {} return "burnt"',
    echo: 'return input',
  })
  await sandbox.load(plugin)
  await call(sandbox, plugin, 'echo', { tenant: 'light', input: 'warm' })
  // Two runs far past the 10 ms slice on the worker's thread.
  for (let i = 0; i < 2; i++) {
    const r = await call(sandbox, plugin, 'burn', { tenant: 'heavy', input: 150 })
    t.equal(r.output, 'burnt', `long run ${i + 1} answered`)
  }
  const finished: string[] = []
  const heavy = call(sandbox, plugin, 'burn', { tenant: 'heavy', input: 600 }).then(() => finished.push('heavy'))
  const light = call(sandbox, plugin, 'echo', { tenant: 'light', input: 'hi' }).then(() => finished.push('light'))
  await Promise.all([heavy, light])
  // On the worker's thread the heavy run would hold the light call's message until it ended.
  t.same(finished, ['light', 'heavy'], 'the light call was answered while the heavy run went on')
})
