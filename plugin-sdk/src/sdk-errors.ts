import { defineErrors } from './errors.js'

/**
 * Errors of the plugin SDK: raised by `definePlugin` and the runtime inside a bundle (they
 * reach the kernel as `SBX_ERR_PLUGIN_ERROR` with `details.pluginCode`), and by the
 * `trellis-plugin` CLI (printed with their code; `--json` output carries it).
 */
export const SDK = defineErrors('SDK', {
  INVALID_DEFINITION: {
    status: 400,
    title: 'Invalid plugin definition',
    message: (d: { reason: string }) => `definePlugin: ${d.reason}`,
  },
  NO_PLUGIN_EXPORT: {
    status: 422,
    title: 'Entry module exports no plugin',
    message: (d: { found: number }) =>
      d.found === 0
        ? 'the entry module exports no value made by definePlugin()'
        : `the entry module exports ${d.found} plugins; export exactly one`,
  },
  UNKNOWN_ENTRY: {
    status: 404,
    title: 'No handler for this entry',
    message: (d: { kind: string; name: string }) => `the plugin has no ${d.kind} handler "${d.name}"`,
  },
  INVALID_RESPONSE: {
    status: 502,
    title: 'Route handler returned an invalid response',
    message: (d: { route: string; reason: string }) => `route "${d.route}" returned an invalid response: ${d.reason}`,
  },
  INVALID_QUERY: {
    status: 400,
    title: 'Invalid query',
    message: (d: { path: string; reason: string }) => `invalid query at ${d.path || '/'}: ${d.reason}`,
  },
  UNKNOWN_COLLECTION: {
    status: 404,
    title: 'Unknown collection',
    message: (d: { collection: string }) => `the plugin declares no collection "${d.collection}"`,
  },
  MANIFEST_NOT_FOUND: {
    status: 404,
    title: 'Manifest not found',
    message: (d: { path: string }) => `no manifest at ${d.path}`,
  },
  MANIFEST_INVALID: {
    status: 422,
    title: 'Manifest is invalid',
    message: (d: { issues: Array<{ pointer: string; message: string }> }) =>
      `manifest is invalid: ${d.issues.map((i) => `${i.pointer || '/'} ${i.message}`).join('; ')}`,
  },
  VALIDATION_FAILED: {
    status: 422,
    title: 'Plugin failed validation',
    message: (d: { errors: number }) => `validation failed with ${d.errors} error${d.errors === 1 ? '' : 's'}`,
  },
  BUILD_FAILED: {
    status: 422,
    title: 'Build failed',
    message: (d: { reason: string }) => `build failed: ${d.reason}`,
  },
  KEY_NOT_FOUND: {
    status: 401,
    title: 'Signing key not found',
    message: (d: { path: string }) => `no signing key at ${d.path} (run \`trellis-plugin keys generate\`)`,
  },
  KEY_INVALID: {
    status: 401,
    title: 'Signing key unusable',
    message: (d: { path: string; reason: string }) => `signing key ${d.path} is unusable: ${d.reason}`,
  },
  KEY_EXISTS: {
    status: 409,
    title: 'Signing key already exists',
    message: (d: { path: string }) => `${d.path} already exists (use --force to replace it)`,
  },
  TARGET_EXISTS: {
    status: 409,
    title: 'Target directory is not empty',
    message: (d: { path: string }) => `${d.path} exists and is not empty`,
  },
  SCOPE_RESERVED: {
    status: 400,
    title: 'Reserved scope',
    message: (d: { scope: string }) =>
      `${d.scope} is reserved: the marketplace publishes nothing under it; use your publisher scope (create @your-org/name)`,
  },
  KERNEL_NOT_INSTALLED: {
    status: 500,
    title: 'Trellis platform not installed',
    message: (d: { reason: string }) =>
      `running a plugin for real (trellis-plugin dev and test, startPluginHarness) needs @trellis/platform installed next to @trellis/plugin-sdk (npm install --save-dev @trellis/platform): ${d.reason}`,
  },
  DEV_KERNEL_UNAVAILABLE: {
    status: 503,
    title: 'Warm dev kernel unavailable',
    message: (d: { reason: string; log: string; tail: string }) =>
      `the warm dev kernel that trellis-plugin test and dev share did not start: ${d.reason}; its log is ${d.log}${d.tail ? `, ending:\n${d.tail}` : ''}`,
  },
  USAGE: {
    status: 400,
    title: 'Invalid command usage',
    message: (d: { reason: string }) => d.reason,
  },
})
