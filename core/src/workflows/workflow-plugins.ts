import type { PluginHost } from '../plugins/plugin-host.js'

/** What the workflow runtime uses of the plugin host: running steps, reading installations, and receiving their events. */
export type WorkflowPlugins = Pick<
  PluginHost,
  'invoke' | 'installed' | 'versionOf' | 'versions' | 'onPluginEvent' | 'onWorkflowStart'
>
