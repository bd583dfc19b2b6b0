import { Type } from '@sinclair/typebox'
import semver from 'semver'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import type { Database } from '../db/database.js'
import type { PluginHost } from './plugin-host.js'
import { PLG } from '../errors.js'
import { auditedWrite } from '../audit/audited-write.js'
import { auditMeta, principalOf } from '../http/guards.js'
import { kernelEvent } from '../events/outbox.js'
import { listDiff, loadInstallation, type installableVersion, type switchVersion } from './lifecycle.js'
import { checkConsent } from './installations.js'
import { installationView, targetTenant } from './installation-access.js'
import { InstallationView, TenantQuery } from './installation-schemas.js'

type Rest<F> = F extends (k: never, ...rest: infer R) => infer T ? (...rest: R) => T : never

export interface UpgradeRouteDeps {
  orgTx: OrgTx
  db: Pick<Database, 'unscoped' | 'inOrg'>
  plugins: Pick<PluginHost, 'versions' | 'forgetTenant' | 'installPolicy'>
  /** An approved version the tenant may install (see plugins/lifecycle.ts). */
  installableVersion: Rest<typeof installableVersion>
  /** Moves an installation to another version, audited (see plugins/lifecycle.ts). */
  switchVersion: Rest<typeof switchVersion>
}

const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })
const Capabilities = Type.Array(Type.String({ maxLength: 300 }), { maxItems: 100 })
const Pending = Type.Object({
  status: Type.Literal('awaiting_consent'),
  installation: InstallationView,
  capabilities: Type.Object({ added: Type.Array(Type.String()), removed: Type.Array(Type.String()) }),
})

/**
 * Upgrades, consent to upgrades that ask for more, and rollbacks. An upgrade whose version asks
 * for no capability beyond what the tenant granted happens at once; one that asks for more
 * waits (202) until a tenant admin consents to exactly the new list.
 */
export function registerUpgradeRoutes(app: Api, deps: UpgradeRouteDeps): void {
  app.post(
    '/installations/:id/upgrade',
    {
      schema: {
        tags: ['plugins'],
        summary:
          'Upgrade to a newer approved version: at once when it asks for no new capability, otherwise it waits for consent',
        params: IdParams,
        querystring: TenantQuery,
        body: Type.Object(
          { version: Type.String({ minLength: 1, maxLength: 64 }), capabilities: Type.Optional(Capabilities) },
          { additionalProperties: false },
        ),
        response: { 200: InstallationView, 202: Pending },
      },
    },
    async (request, reply) => {
      const tenantId = await targetTenant(deps, principalOf(request), request.query.tenantId)
      const meta = auditMeta(request)
      const result = await deps.orgTx(tenantId, async (tx) => {
        const inst = await loadInstallation(tx, request.params.id)
        const from = await deps.plugins.versions.byId(tx, inst.versionId)
        if (!from) throw PLG.VERSION_NOT_FOUND({ name: inst.plugin })
        const to = await deps.installableVersion(tx, inst.plugin, request.body.version)
        if (!semver.gt(to.version, from.version)) throw PLG.NOT_AN_UPGRADE({ from: from.version, to: to.version })
        await deps.plugins.installPolicy?.(tx, tenantId, to)
        const diff = listDiff(inst.capabilities, to.manifest.capabilities)
        if (diff.added.length > 0 && request.body.capabilities === undefined) {
          await auditedWrite(tx, {
            write: {
              sql: 'update plugin_installations set pending_version_id = ?::uuid, updated_at = now() where id = ?::uuid returning id',
              params: [to.id, inst.id],
            },
            auditOrg: tenantId,
            audit: {
              ...meta,
              action: 'plugin.upgrade_pending',
              target: { kind: 'plugin_installation', id: inst.id },
              data: { plugin: to.name, from: from.version, to: to.version, added: diff.added },
            },
            events: [
              kernelEvent('marketplace.installation.upgrade_pending', `installation/${inst.id}`, {
                installationId: inst.id,
                plugin: to.name,
                version: to.version,
                capabilities: to.manifest.capabilities,
                from: from.version,
                added: diff.added,
              }),
            ],
          })
          return { pending: true as const, inst, diff }
        }
        if (request.body.capabilities !== undefined) checkConsent(to, request.body.capabilities)
        return {
          pending: false as const,
          inst: await deps.switchVersion(tx, inst, from, to, { action: 'upgraded', meta }),
        }
      })
      deps.plugins.forgetTenant(tenantId)
      if (result.pending) {
        reply.code(202)
        return {
          status: 'awaiting_consent' as const,
          installation: await installationView(deps, result.inst),
          capabilities: result.diff,
        }
      }
      return installationView(deps, result.inst)
    },
  )

  app.post(
    '/installations/:id/consent',
    {
      schema: {
        tags: ['plugins'],
        summary:
          "Consent to the capabilities of the upgrade waiting for it (exactly the new version's list), which then happens",
        params: IdParams,
        querystring: TenantQuery,
        body: Type.Object({ capabilities: Capabilities }, { additionalProperties: false }),
        response: { 200: InstallationView },
      },
    },
    async (request) => {
      const tenantId = await targetTenant(deps, principalOf(request), request.query.tenantId)
      const meta = auditMeta(request)
      const inst = await deps.orgTx(tenantId, async (tx) => {
        const current = await loadInstallation(tx, request.params.id)
        if (!current.pendingVersionId) throw PLG.NO_PENDING_UPGRADE()
        const from = await deps.plugins.versions.byId(tx, current.versionId)
        const pending = await deps.plugins.versions.byId(tx, current.pendingVersionId)
        if (!from || !pending) throw PLG.VERSION_NOT_FOUND({ name: current.plugin })
        const to = await deps.installableVersion(tx, pending.name, pending.version)
        checkConsent(to, request.body.capabilities)
        return deps.switchVersion(tx, current, from, to, { action: 'upgraded', meta })
      })
      deps.plugins.forgetTenant(tenantId)
      return installationView(deps, inst)
    },
  )

  app.post(
    '/installations/:id/rollback',
    {
      schema: {
        tags: ['plugins'],
        summary: 'Go back to a version installed before (default: the previous one); it must still be approved',
        params: IdParams,
        querystring: TenantQuery,
        body: Type.Object(
          { version: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) },
          { additionalProperties: false },
        ),
        response: { 200: InstallationView },
      },
    },
    async (request) => {
      const tenantId = await targetTenant(deps, principalOf(request), request.query.tenantId)
      const meta = auditMeta(request)
      const inst = await deps.orgTx(tenantId, async (tx) => {
        const current = await loadInstallation(tx, request.params.id)
        const from = await deps.plugins.versions.byId(tx, current.versionId)
        if (!from) throw PLG.VERSION_NOT_FOUND({ name: current.plugin })
        const wanted = request.body.version
        const entry = wanted
          ? current.history.find((h) => h.version === wanted)
          : current.history[current.history.length - 1]
        if (!entry)
          throw PLG.NOTHING_TO_ROLL_BACK({
            reason: wanted
              ? `${current.plugin}@${wanted} was never installed here`
              : `${current.plugin} has no earlier version installed`,
          })
        const to = await deps.installableVersion(tx, current.plugin, entry.version)
        return deps.switchVersion(tx, current, from, to, { action: 'rolled_back', meta })
      })
      deps.plugins.forgetTenant(tenantId)
      return installationView(deps, inst)
    },
  )
}
