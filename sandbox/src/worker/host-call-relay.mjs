// @ts-check
// Host calls of one invocation: checked as they come out of the isolate (through its only
// callback: every argument is whatever plugin code passed), sent to the parent — the calls of
// one stretch together, in one message — and their outcomes delivered back to plugin code, which
// runs on from there in a stretch of its own.
import { Buffer } from 'node:buffer'
import { enterStretch } from './stretches.mjs'

/** @typedef {import('./invocation.mjs').Invocation} Invocation */
/** @typedef {import('../protocol.js').HostCallOutcome} HostCallOutcome */
/** @typedef {import('../protocol.js').HostCallError} HostCallError */
/** @typedef {import('../protocol.js').WireError} WireError */

/**
 * A host call from plugin code.
 * @param {Invocation} inv
 * @param {unknown} token
 * @param {unknown} cid
 * @param {unknown} op
 * @param {unknown} args
 */
export function onHostCall(inv, token, cid, op, args) {
  if (inv.done || token !== inv.token) return
  if (cid === -1)
    return inv.fail({ code: 'SBX_ERR_HOST_CALL_LIMIT', details: { limit: inv.limits.maxHostCalls } }, true)
  if (
    typeof cid !== 'number' ||
    typeof op !== 'string' ||
    typeof args !== 'string' ||
    op.length === 0 ||
    op.length > 256
  )
    return
  inv.hostCalls++
  if (inv.hostCalls > inv.limits.maxHostCalls) {
    const details = { limit: inv.limits.maxHostCalls }
    inv.breach = { code: 'SBX_ERR_HOST_CALL_LIMIT', details }
    return settleError(
      inv,
      cid,
      { code: 'SBX_ERR_HOST_CALL_LIMIT', status: 429, message: 'host call limit reached' },
      { code: 'SBX_ERR_HOST_CALL_LIMIT', details },
    )
  }
  if (args.length > inv.limits.maxInputBytes || Buffer.byteLength(args) > inv.limits.maxInputBytes) {
    const details = { what: 'host-call args', limitBytes: inv.limits.maxInputBytes }
    return settleError(
      inv,
      cid,
      { code: 'SBX_ERR_PAYLOAD_TOO_LARGE', status: 413, message: `host-call args exceed ${details.limitBytes} bytes` },
      { code: 'SBX_ERR_PAYLOAD_TOO_LARGE', details },
    )
  }
  // Calls made in one stretch of plugin code (a `Promise.all` of host calls) leave together,
  // in one message, once the stretch has returned. isolated-vm delivers each call of the
  // stretch as a task of its own, with microtasks run after each: the flush waits for the
  // event loop's next check phase, after all of them.
  inv.outgoing.push({ cid, op, args })
  if (inv.outgoing.length === 1) setImmediate(flushHostCalls, inv)
}

/** @param {Invocation} inv */
function flushHostCalls(inv) {
  const calls = inv.outgoing
  inv.outgoing = []
  if (inv.done || calls.length === 0) return
  const only = calls.length === 1 ? calls[0] : undefined
  if (only) inv.worker.send({ t: 'hc', rid: inv.rid, cid: only.cid, op: only.op, args: only.args })
  else inv.worker.send({ t: 'hcb', rid: inv.rid, calls })
}

/**
 * A host-call outcome from the parent.
 * @param {Invocation} inv
 * @param {HostCallOutcome} msg
 */
export function onHostResult(inv, msg) {
  if (inv.done) return
  const resume = inv.incoming.length === 0
  take(inv, msg)
  if (resume) deliver(inv)
}

/**
 * The outcomes of the calls that left together ('hcb'), delivered to plugin code together: one
 * stretch resumes it for all of them.
 * @param {Invocation} inv
 * @param {HostCallOutcome[]} results
 */
export function onHostResults(inv, results) {
  if (inv.done || !Array.isArray(results)) return
  const resume = inv.incoming.length === 0
  for (const r of results) take(inv, r)
  if (resume && inv.incoming.length > 0) deliver(inv)
}

/**
 * @param {Invocation} inv
 * @param {HostCallOutcome} msg
 */
function take(inv, msg) {
  if (msg.ok) {
    inv.incoming.push(msg.cid, true, typeof msg.value === 'string' ? msg.value : '')
    return
  }
  /** @type {Partial<HostCallError>} */
  const e = msg.error ?? {}
  refuse(
    inv,
    msg.cid,
    {
      code: String(e.code ?? 'SBX_ERR_HOST_CALL_FAILED'),
      status: Number(e.status ?? 500),
      message: String(e.message ?? 'host call failed'),
    },
    { hostRef: msg.cid },
  )
}

/**
 * @param {Invocation} inv
 * @param {number} cid
 * @param {HostCallError} error what plugin code sees
 * @param {WireError} origin what the parent learns if plugin code rethrows it
 */
function settleError(inv, cid, error, origin) {
  const resume = inv.incoming.length === 0
  refuse(inv, cid, error, origin)
  if (resume) deliver(inv)
}

/**
 * @param {Invocation} inv
 * @param {number} cid
 * @param {HostCallError} error
 * @param {WireError} origin
 */
function refuse(inv, cid, error, origin) {
  ;(inv.errorRefs ??= new Map()).set(cid, origin)
  inv.incoming.push(
    cid,
    false,
    JSON.stringify({ code: error.code, status: error.status, message: error.message, ref: cid }),
  )
}

/**
 * Delivers the host-call outcomes waiting for plugin code (those that arrive before its turn
 * too), which runs on from there.
 * @param {Invocation} inv
 */
function deliver(inv) {
  if (inv.done || !inv.iso) return
  const iso = inv.iso
  enterStretch(inv, () => {
    const outcomes = inv.incoming
    inv.incoming = []
    const remaining = inv.limits.cpuMs - inv.cpuUsedMs()
    if (remaining <= 0) {
      inv.fail({ code: 'SBX_ERR_TIMEOUT', details: { limit: 'cpu', limitMs: inv.limits.cpuMs } }, true)
      return undefined
    }
    // (cid, ok, payload) for each outcome, after the token
    return { ref: iso.settleRef, args: [inv.token, ...outcomes], timeoutMs: Math.max(1, Math.ceil(remaining)) }
  })
}
