// @ts-check
// What a failed run of plugin code becomes: the bootstrap's error JSON (text plugin code could
// shape) turned into a sandbox error for the parent, every field checked and clipped.
import { mapPluginStack } from './stack-mapper.mjs'

/** @typedef {import('../protocol.js').WireError} WireError */
/** @typedef {import('../limits.js').SandboxLimits} SandboxLimits */
/** @typedef {import('./worker-types.js').CompiledBundle} CompiledBundle */

/**
 * @param {string} errorJson the bootstrap's description of the failure
 * @param {SandboxLimits} limits
 * @param {ReadonlyMap<number, WireError>} errorRefs what each host error handed to plugin code stands for
 * @param {CompiledBundle | undefined} bundle to map the plugin's stack to its sources
 * @returns {WireError}
 */
export function describeFailure(errorJson, limits, errorRefs, bundle) {
  /** @type {any} parsed from what plugin code made of its error: every field is checked below */
  let d
  try {
    d = JSON.parse(errorJson)
  } catch {
    d = {}
  }
  switch (d?.kind) {
    case 'host': {
      if (d.ref === -1)
        return {
          code: 'SBX_ERR_PAYLOAD_TOO_LARGE',
          details: { what: 'host-call args', limitBytes: limits.maxInputBytes },
        }
      const origin = errorRefs.get(d.ref)
      if (origin) return origin
      break
    }
    case 'output':
      return {
        code: 'SBX_ERR_OUTPUT_INVALID',
        details: { reason: str(d.message, 500) || 'not serialisable' },
      }
    case 'output-size':
      return {
        code: 'SBX_ERR_PAYLOAD_TOO_LARGE',
        details: { what: 'output', limitBytes: limits.maxOutputBytes },
      }
    case 'host-call-limit':
      return { code: 'SBX_ERR_HOST_CALL_LIMIT', details: { limit: limits.maxHostCalls } }
  }
  /** @type {Record<string, unknown>} */
  const details = {
    message: str(d?.message, 8192) || 'plugin error',
    name: str(d?.name, 200) || 'Error',
    stack: bundle ? mapPluginStack(d?.stack, bundle) : '',
  }
  if (str(d?.code, 200)) details.pluginCode = d.code
  if (typeof d?.status === 'number' && d.status >= 400 && d.status <= 599) details.pluginStatus = d.status
  return { code: 'SBX_ERR_PLUGIN_ERROR', details }
}

/**
 * @param {unknown} v
 * @param {number} max
 */
function str(v, max) {
  return typeof v === 'string' ? v.slice(0, max) : ''
}
