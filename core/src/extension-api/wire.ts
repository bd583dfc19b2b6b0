/**
 * The kernel side of the extension API: builds each service once from the kernel's parts, gives
 * every extension the services it declared (and nothing else), and collects what it registered.
 */
import { announceVersionChanges } from '../scale/version-broadcast.js'
import type { Logger } from 'pino'
import type { Api } from '../http/types.js'
import type { KernelContext } from '../kernel-context.js'
import { orgTx } from '../kernel-context.js'
import { appendAudit } from '../audit/audit-log.js'
import { emitEvents, emitEventsTo } from '../events/outbox.js'
import { installVersion } from '../plugins/lifecycle.js'
import { egressAllows } from '../plugins/grantable.js'
import type { Tx } from '../db/database.js'
import { KRN } from '../errors.js'
import type { BackgroundJob, DemoSeeder, Extension, InstallPolicy } from './define.js'
import {
  coreServices,
  type AuditService,
  type EventService,
  type PluginService,
  type TransactionService,
} from './services.js'
import { createVersionRegistry } from './version-registry.js'
import { createMembershipService, createOrganisationService } from './organisations.js'

/** What the extensions of one kernel registered. */
export interface Contributions {
  installPolicies: InstallPolicy[]
  routes: Array<(app: Api) => void>
  pages: Array<(app: Api) => void | Promise<void>>
  jobs: BackgroundJob[]
  demo: DemoSeeder[]
}

/** The services of one kernel, by reference id. */
export function kernelServices(k: KernelContext): Map<string, unknown> {
  const registry = createVersionRegistry((id) => k.plugins.versions.forget(id))
  const transactions: TransactionService = {
    async run(orgId, fn, opts) {
      let used: Tx | undefined
      try {
        return await orgTx(
          k,
          orgId,
          (tx) => {
            used = tx
            return fn(tx)
          },
          opts,
        )
      } finally {
        // Other processes drop their cached copies too (the kill switch reaches every API process).
        if (used) announceVersionChanges(k.shared, registry.settle(used))
      }
    },
    read: (orgId, fn) => k.db.inOrg(orgId, (tx) => fn(tx)),
  }
  const audit: AuditService = { append: (tx, orgId, ...records) => appendAudit(tx as Tx, orgId, ...records) }
  const events: EventService = {
    emit: (tx, ...e) => emitEvents(tx as Tx, ...e),
    emitTo: (tx, current, orgs, ...e) => emitEventsTo(tx as Tx, current, orgs, ...e),
  }
  const allows = egressAllows(k)
  const plugins: PluginService = {
    probe: (bundle) => k.plugins.probe(bundle),
    installedPlugins: async (tenantId) => new Set((await k.plugins.installed(tenantId)).byPlugin.keys()),
    install: async (tenantId, req, meta) => ({ id: (await installVersion(k, tenantId, req, meta)).id }),
    egressAllows: (target) => allows(target),
  }
  const logger: Logger = k.logger
  return new Map<string, unknown>([
    [coreServices.transactions.id, transactions],
    [coreServices.audit.id, audit],
    [coreServices.events.id, events],
    [coreServices.versions.id, registry],
    [coreServices.plugins.id, plugins],
    [coreServices.organisations.id, createOrganisationService()],
    [coreServices.memberships.id, createMembershipService()],
    [coreServices.logger.id, logger],
  ])
}

/** Registers each extension with exactly the services it declared; returns what they added. */
export async function registerExtensions(
  services: Map<string, unknown>,
  extensions: readonly Extension[],
): Promise<Contributions> {
  const out: Contributions = { installPolicies: [], routes: [], pages: [], jobs: [], demo: [] }
  const names = new Set<string>()
  for (const ext of extensions) {
    if (names.has(ext.name))
      throw KRN.CONFIG_INVALID({ variable: 'extensions', reason: `two extensions are named ${ext.name}` })
    names.add(ext.name)
    const deps: Record<string, unknown> = {}
    for (const [key, ref] of Object.entries(ext.deps)) {
      if (!services.has(ref.id))
        throw KRN.CONFIG_INVALID({
          variable: 'extensions',
          reason: `${ext.name} asks for ${ref.id}, which the kernel does not provide`,
        })
      deps[key] = services.get(ref.id)
    }
    await ext.register(Object.freeze(deps), {
      installPolicies: { add: (p) => void out.installPolicies.push(p) },
      routes: { add: (r) => void out.routes.push(r) },
      pages: { add: (r) => void out.pages.push(r) },
      jobs: { add: (j) => void out.jobs.push(j) },
      demo: { add: (d) => void out.demo.push(d) },
    })
  }
  return out
}
