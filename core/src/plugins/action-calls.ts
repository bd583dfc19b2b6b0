import type { Capability } from '@trellis/plugin-sdk'
import { KRN, PLG } from '../errors.js'
import type { Running } from './host-calls.js'
import type { Installation } from './installations.js'
import type { InvocationRuns } from './invocation-runs.js'
import { checkSchema } from './schemas.js'
import type { ServableVersions } from './servable-versions.js'
import type { TenantInstallations } from './tenant-installations.js'

const MAX_CALL_DEPTH = 8

/** What `ctx.plugins.call` needs of the host. */
export interface ActionCallDeps {
  installations: TenantInstallations
  versions: ServableVersions
  runs: InvocationRuns
  caps(inst: Installation): Capability[]
}

/**
 * `ctx.plugins.call`: the callee must be installed for the same tenant and expose the action;
 * its input and output are checked against the schemas it declares, and it runs in the
 * caller's invocation tree (same transaction), acting as the calling plugin.
 */
export async function callAction(
  deps: ActionCallDeps,
  from: Running,
  plugin: string,
  action: string,
  input: unknown,
): Promise<unknown> {
  const tree = from.tree
  if (from.depth + 1 > MAX_CALL_DEPTH) throw PLG.CALL_DEPTH_EXCEEDED({ depth: MAX_CALL_DEPTH })
  // With the invocation's transaction open, read through it: on the embedded database (one
  // connection) another transaction would wait for this one. Whether it is open is asked again
  // for each read: a data call sent with this call (one message) may open it meanwhile.
  const inst = (await tree.tx.ifOpen((tx) => deps.installations.of(tree.tenantId, tx))).byPlugin.get(plugin)
  if (!inst) throw PLG.NOT_INSTALLED({ name: plugin })
  const version = await tree.tx.ifOpen((tx) => deps.versions.of(tree.tenantId, tx, inst))
  const declared = version.manifest.actions?.[action]
  if (!declared || !Object.hasOwn(version.manifest.actions!, action))
    throw KRN.NOT_FOUND({ what: `action ${plugin}#${action}` })
  checkSchema(`${version.id}:action-in:${action}`, declared.input, input ?? null, `input of ${plugin}#${action}`)
  const caller = { kind: 'plugin' as const, id: from.inst.plugin, permissions: from.caller.permissions }
  // Loading the callee's bundle is the kernel's time, not the plugin's: not idle.
  await tree.tx.busyWhile(() => deps.runs.ensureLoaded(version))
  const output = await deps.runs.run(
    { inst, version, caps: deps.caps(inst), tree, caller, depth: from.depth + 1 },
    { kind: 'action', name: action },
    input ?? null,
  )
  checkSchema(`${version.id}:action-out:${action}`, declared.output, output, `output of ${plugin}#${action}`)
  return output
}
