import { defineErrors } from '@trellis/plugin-sdk'

// Statuses are what an API caller should see when the kernel surfaces the error unchanged:
// a plugin's fault is an upstream fault (502/504), a kernel mistake is a 4xx/500.
export const SBX = defineErrors('SBX', {
  DIGEST_MISMATCH: {
    status: 422,
    title: 'Bundle digest does not match',
    message: (d: { id: string; version: string }) =>
      `bundle ${d.id}@${d.version}: sha256 of the code does not match the declared digest`,
  },
  BUNDLE_INVALID: {
    status: 422,
    title: 'Bundle failed to load',
    message: (d: { id: string; version: string; reason: string }) =>
      `bundle ${d.id}@${d.version} failed to load: ${d.reason}`,
  },
  BUNDLE_CONFLICT: {
    status: 409,
    title: 'Another bundle is loaded under this id and version',
    message: (d: { id: string; version: string }) => `${d.id}@${d.version} is already loaded with a different digest`,
  },
  BUNDLE_NOT_LOADED: {
    status: 404,
    title: 'Bundle not loaded',
    message: (d: { id: string; version: string }) => `${d.id}@${d.version} is not loaded in this sandbox`,
  },
  UNKNOWN_ENTRY: {
    status: 404,
    title: 'Entry not exported by the bundle',
    message: (d: { kind: string; name: string }) => `the bundle does not export ${d.kind} "${d.name}"`,
  },
  INVALID_REQUEST: {
    status: 400,
    title: 'Invalid sandbox request',
    message: (d: { reason: string }) => d.reason,
  },
  TIMEOUT: {
    status: 504,
    title: 'Plugin exceeded its time limit',
    message: (d: { limit: 'cpu' | 'wall'; limitMs: number }) =>
      `plugin exceeded its ${d.limit === 'cpu' ? 'CPU time' : 'wall-clock'} limit of ${d.limitMs} ms`,
  },
  MEMORY: {
    status: 502,
    title: 'Plugin exceeded its memory limit',
    message: (d: { limitMb: number }) => `plugin exceeded its memory limit of ${d.limitMb} MB`,
  },
  HOST_CALL_LIMIT: {
    status: 429,
    title: 'Plugin made too many host calls',
    message: (d: { limit: number }) => `plugin exceeded its limit of ${d.limit} host calls per invocation`,
  },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    title: 'Payload too large',
    message: (d: { what: 'input' | 'output' | 'host-call args'; limitBytes: number }) =>
      `${d.what} exceeds ${d.limitBytes} bytes`,
  },
  OUTPUT_INVALID: {
    status: 502,
    title: 'Plugin output is not JSON',
    message: (d: { reason: string }) => `plugin output could not be copied as JSON: ${d.reason}`,
  },
  PLUGIN_ERROR: {
    status: 502,
    title: 'Plugin threw an error',
    message: (d: { message: string }) => d.message,
  },
  HOST_CALL_FAILED: {
    status: 500,
    title: 'Host call failed',
    message: (d: { op: string }) => `host call "${d.op}" failed`,
  },
  // Seen only by plugin code: a host object kept past its invocation refuses calls with it.
  INVOCATION_ENDED: {
    status: 409,
    title: 'Invocation already ended',
    message: () => 'host is not available after the invocation ended',
  },
  // `retryable`: the invocation was a bystander of a worker another tenant's code killed (or of
  // a worker lost for no known cause); it may run again once, on another worker.
  WORKER_LOST: {
    status: 503,
    title: 'Sandbox worker lost',
    message: (d: { reason: string; retryable?: boolean }) =>
      `the sandbox worker running this invocation was lost: ${d.reason}`,
  },
  AT_CAPACITY: {
    status: 503,
    title: 'Sandbox at capacity',
    message: (d: { reason: string }) => `the sandbox cannot take this invocation now: ${d.reason}`,
  },
  CLOSED: {
    status: 503,
    title: 'Sandbox closed',
    message: () => 'the sandbox is closed',
  },
})
