import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import type { Database, Tx } from '../db/database.js'
import type { SecretBox } from '../crypto/secret-box.js'
import type { AuditRecord } from '../audit/audit-log.js'
import { KRN, PLG } from '../errors.js'
import { auditedWrite } from '../audit/audited-write.js'
import { auditMeta, auditOf, principalOf } from '../http/guards.js'
import { PageQuery, pageOf, decodeCursor, toPage } from '../http/pagination.js'
import { kernelEvent } from '../events/outbox.js'
import type { PluginHost } from './plugin-host.js'
import {
  INSTALLATION_COLS,
  openSecrets,
  secretKeys,
  secretsAd,
  splitSettings,
  toInstallation,
  type Installation,
  type InstallationRow,
} from './installations.js'
import type { HistoryEntry, installVersion } from './lifecycle.js'
import { installationView, readerTenant, targetTenant, viewOf } from './installation-access.js'
import { IdParams, InstallationView, PLUGIN_NAME, TenantQuery } from './installation-schemas.js'

// Kept where they always were for the modules that import them from here.
export { installationView, targetTenant } from './installation-access.js'
export { InstallationView, TenantQuery, invocationView } from './installation-schemas.js'

// Built once: the same text on every request is found among the prepared statements without
// being built and hashed again.
const SELECT_INSTALLATION = `select ${INSTALLATION_COLS} from plugin_installations where id = ?::uuid`
// The row comes back whole (its history and pending upgrade too), so the answer needs no second read.
const UPDATE_INSTALLATION = `update plugin_installations set settings = ?::jsonb, secrets_enc = ?, secret_names = ?::text[], status = ?, updated_at = now() where id = ?::uuid returning ${INSTALLATION_COLS}, history, pending_version_id`

export interface InstallationRouteDeps {
  orgTx: OrgTx
  db: Pick<Database, 'unscoped' | 'inOrg'>
  plugins: Pick<PluginHost, 'versions' | 'forgetTenant' | 'data'>
  secrets: SecretBox
  /** Installs an approved version (see plugins/lifecycle.ts). */
  install(
    tenantId: string,
    req: Parameters<typeof installVersion>[2],
    meta: Pick<AuditRecord, 'actor' | 'ip' | 'requestId'>,
  ): Promise<Installation>
  /** Installed plugins of the tenant that depend on `plugin`. */
  dependentsOf(tx: Tx, tenantId: string, plugin: string): Promise<string[]>
}

/** A tenant's installations: install, read, configure, disable and uninstall. */
export function registerInstallationRoutes(app: Api, deps: InstallationRouteDeps): void {
  const host = () => deps.plugins
  const view = (inst: Installation) => installationView(deps, inst)
  const load = async (tx: Tx, id: string) => {
    const [row] = await tx.sql<InstallationRow>(SELECT_INSTALLATION, [id])
    if (!row) throw KRN.NOT_FOUND({ what: 'installation' })
    return toInstallation(row)
  }

  app.post(
    '/installations',
    {
      schema: {
        tags: ['plugins'],
        summary: 'Install a plugin version for a tenant, consenting to the capabilities it requests',
        querystring: TenantQuery,
        body: Type.Object(
          {
            plugin: Type.String({ pattern: PLUGIN_NAME }),
            version: Type.String({ minLength: 1, maxLength: 64 }),
            capabilities: Type.Array(Type.String({ maxLength: 300 }), {
              maxItems: 100,
              description: 'Must equal the capabilities the version requests.',
            }),
            settings: Type.Optional(
              Type.Record(Type.String(), Type.Unknown(), {
                description: "Validated by the plugin's settings schema; secret ones are sealed.",
              }),
            ),
            mount: Type.Optional(
              Type.String({
                pattern: '^[a-z0-9][a-z0-9-]{0,63}$',
                description: 'Path segment under /v1/x/; defaults to the name without its scope.',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 201: InstallationView },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      const tenantId = await targetTenant(deps, p, request.query.tenantId)
      const body = request.body
      const meta = auditMeta(request)
      const inst = await deps.install(
        tenantId,
        {
          plugin: body.plugin,
          version: body.version,
          capabilities: body.capabilities,
          settings: body.settings ?? {},
          mount: body.mount,
          installedBy: `${p.kind}:${p.id}`,
        },
        meta,
      )
      reply.code(201)
      return view(inst)
    },
  )

  app.get(
    '/installations',
    {
      schema: {
        tags: ['plugins'],
        summary: "The tenant's installations",
        querystring: Type.Intersect([TenantQuery, Type.Object(PageQuery)]),
        response: { 200: pageOf(InstallationView) },
      },
    },
    async (request) => {
      const tenantId = await readerTenant(deps, request, request.query.tenantId)
      const after = decodeCursor(request.query.cursor)
      const limit = request.query.limit ?? 50
      const rows = await deps.orgTx(tenantId, (tx) =>
        tx.sql<InstallationRow>(
          `select ${INSTALLATION_COLS} from plugin_installations where (?::uuid is null or id > ?::uuid) order by id limit ?`,
          [after, after, limit + 1],
        ),
      )
      const page = toPage(rows, limit)
      return { items: await Promise.all(page.items.map((r) => view(toInstallation(r)))), nextCursor: page.nextCursor }
    },
  )

  app.get(
    '/installations/:id',
    {
      schema: {
        tags: ['plugins'],
        summary: 'One installation',
        params: IdParams,
        querystring: TenantQuery,
        response: { 200: InstallationView },
      },
    },
    async (request) => {
      const tenantId = await readerTenant(deps, request, request.query.tenantId)
      return view(await deps.orgTx(tenantId, (tx) => load(tx, request.params.id)))
    },
  )

  app.patch(
    '/installations/:id',
    {
      schema: {
        tags: ['plugins'],
        summary: 'Change settings (null removes one; secrets are write-only) or disable/enable an installation',
        params: IdParams,
        querystring: TenantQuery,
        body: Type.Object(
          {
            settings: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
            status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled')])),
          },
          { additionalProperties: false },
        ),
        response: { 200: InstallationView },
      },
    },
    async (request) => {
      const tenantId = await targetTenant(deps, principalOf(request), request.query.tenantId)
      const result = await deps.orgTx(tenantId, async (tx) => {
        const current = await load(tx, request.params.id)
        const version = await host().versions.byId(tx, current.versionId)
        if (!version) throw PLG.VERSION_NOT_FOUND({ name: current.plugin })
        let settings = current.settings
        let sealed = current.secretsEnc
        let names = current.secretNames
        if (request.body.settings) {
          const merged: Record<string, unknown> = { ...current.settings, ...openSecrets(deps.secrets, current) }
          for (const [key, value] of Object.entries(request.body.settings)) {
            if (value === null) delete merged[key]
            else merged[key] = value
          }
          const split = splitSettings(version, merged)
          settings = split.settings
          names = Object.keys(split.secrets)
          sealed = names.length ? deps.secrets.seal(JSON.stringify(split.secrets), secretsAd(current.id)) : null
        }
        const changed = Object.keys(request.body.settings ?? {})
        const status = request.body.status ?? current.status
        // The row comes back whole (its history and pending upgrade too), so the answer is built
        // in this transaction: no second one after the write.
        const [row] = await auditedWrite<
          InstallationRow & { history: HistoryEntry[]; pending_version_id: string | null }
        >(tx, {
          write: {
            sql: UPDATE_INSTALLATION,
            params: [JSON.stringify(settings), sealed, names, status, current.id],
          },
          auditOrg: tenantId,
          audit: auditOf(
            request,
            status !== current.status
              ? `plugin.${status === 'disabled' ? 'disabled' : 'enabled'}`
              : 'plugin.settings.updated',
            { kind: 'plugin_installation', id: current.id },
            {
              plugin: current.plugin,
              settings: changed.filter((c) => !secretKeys(version).has(c)),
              secrets: changed.filter((c) => secretKeys(version).has(c)),
            },
          ),
        })
        const view = await viewOf(
          tx,
          host().versions,
          toInstallation(row!),
          row!.history,
          row!.pending_version_id,
          version,
        )
        return { view, statusChanged: status !== current.status }
      })
      // Settings alone change nobody's subscriptions; enabling or disabling may.
      host().forgetTenant(tenantId, { subscriptions: result.statusChanged })
      return result.view
    },
  )

  app.delete(
    '/installations/:id',
    {
      schema: {
        tags: ['plugins'],
        summary: 'Uninstall: the plugin stops serving at once; its records are kept unless keepData=false',
        params: IdParams,
        querystring: Type.Intersect([
          TenantQuery,
          Type.Object({
            keepData: Type.Optional(Type.Boolean({ default: true })),
            force: Type.Optional(
              Type.Boolean({ description: 'Uninstall even though installed plugins depend on it.' }),
            ),
          }),
        ]),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const tenantId = await targetTenant(deps, principalOf(request), request.query.tenantId)
      const keepData = request.query.keepData ?? true
      const meta = auditMeta(request)
      await deps.orgTx(tenantId, async (tx) => {
        const current = await load(tx, request.params.id)
        const dependents = await deps.dependentsOf(tx, tenantId, current.plugin)
        if (dependents.length && !request.query.force) throw PLG.DEPENDED_ON({ plugin: current.plugin, dependents })
        // Records are dropped first: how many is part of the audit entry.
        const deleted = keepData ? 0 : await host().data.dropPluginData(tx, current.plugin)
        await auditedWrite(tx, {
          write: { sql: 'delete from plugin_installations where id = ?::uuid returning id', params: [current.id] },
          auditOrg: tenantId,
          audit: {
            ...meta,
            action: 'plugin.uninstalled',
            target: { kind: 'plugin_installation', id: current.id },
            data: { plugin: current.plugin, keepData, recordsDeleted: deleted, dependents },
          },
          events: [
            kernelEvent('marketplace.installation.removed', `installation/${current.id}`, {
              installationId: current.id,
              plugin: current.plugin,
              keepData,
            }),
          ],
        })
      })
      host().forgetTenant(tenantId)
      reply.code(204)
      return null
    },
  )
}
