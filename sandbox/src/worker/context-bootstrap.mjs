// @ts-check
// A new V8 context with the bootstrap run in it (isolate-bootstrap.js): what every plugin
// context starts from. No plugin code runs here; the host callback the bootstrap receives
// reaches whichever plugin context later adopts this one (`target.current`), and nothing before.
import { readFileSync } from 'node:fs'
import ivm from './isolated-vm.mjs'
import { BOOTSTRAP_FILENAME } from './stack-mapper.mjs'

/** @typedef {import('isolated-vm').Reference<Function>} FunctionRef */
/** @typedef {import('isolated-vm').Script & { cachedData?: import('isolated-vm').ExternalCopy<ArrayBuffer> }} CompiledScript V8 gives back its code cache */
/** @typedef {Record<'invoke' | 'settle' | 'poll' | 'drain' | 'load', Function>} BootstrapApi what isolate-bootstrap.js returns */
/** @typedef {{ current: { onHostCall(token: unknown, cid: unknown, op: unknown, args: unknown): void } | null } | null} HostTarget */
/**
 * @typedef {object} BootedContext
 * @property {import('isolated-vm').Context} context
 * @property {FunctionRef} invokeRef
 * @property {FunctionRef} settleRef
 * @property {FunctionRef} pollRef
 * @property {FunctionRef} drainRef
 * @property {FunctionRef} loadRef
 * @property {{ target: HostTarget }} hostCalls where the context's host calls go (set on adoption)
 */

const BOOTSTRAP_SOURCE = readFileSync(new URL('./isolate-bootstrap.js', import.meta.url), 'utf8')
// V8's code cache for the bootstrap, produced by the first context of this process.
/** @type {import('isolated-vm').ExternalCopy<ArrayBuffer> | undefined} */
let bootstrapCache

/**
 * @param {import('isolated-vm').Isolate} isolate
 * @param {number} timeoutMs
 * @returns {BootedContext}
 */
export function bootContext(isolate, timeoutMs) {
  const context = isolate.createContextSync()
  try {
    /** @type {CompiledScript} */
    const boot = isolate.compileScriptSync(
      BOOTSTRAP_SOURCE,
      bootstrapCache
        ? { filename: BOOTSTRAP_FILENAME, cachedData: bootstrapCache }
        : { filename: BOOTSTRAP_FILENAME, produceCachedData: true },
    )
    if (!bootstrapCache && boot.cachedData) bootstrapCache = boot.cachedData
    const bootFn = boot.runSync(context, { reference: true, timeout: timeoutMs })
    /** @type {{ target: HostTarget }} */
    const hostCalls = { target: null }
    const api = /** @type {import('isolated-vm').Reference<BootstrapApi>} */ (
      bootFn.applySync(
        undefined,
        [
          new ivm.Callback(
            /** @type {(token: unknown, cid: unknown, op: unknown, args: unknown) => void} */
            (token, cid, op, args) => hostCalls.target?.current?.onHostCall(token, cid, op, args),
            { ignored: true },
          ),
        ],
        { result: { reference: true }, timeout: timeoutMs },
      )
    )
    return {
      context,
      invokeRef: api.getSync('invoke', { reference: true }),
      settleRef: api.getSync('settle', { reference: true }),
      pollRef: api.getSync('poll', { reference: true }),
      drainRef: api.getSync('drain', { reference: true }),
      loadRef: api.getSync('load', { reference: true }),
      hostCalls,
    }
  } catch (err) {
    context.release()
    throw err
  }
}
