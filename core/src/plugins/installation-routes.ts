import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import type { Api } from '../http/types.js'
import { orgTx, type KernelContext } from '../kernel-context.js'
import { AUTH, KRN, PLG } from '../errors.js'
import { appendAudit } from '../audit/audit-log.js'
import { auditMeta, principalOf } from '../http/guards.js'
import { PageQuery, pageOf, decodeCursor, toPage, toPageOf } from '../http/pagination.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import type { Principal } from '../identity/principal.js'
import { PLATFORM_ORG } from '../db/database.js'
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
import { dependentsOf, installVersion, listDiff, loadInstallation } from './lifecycle.js'
import { emitEvents, kernelEvent } from '../events/outbox.js'

const Uuid = Type.String({ format: 'uuid' })
export const InstallationView = Type.Object({
  id: Uuid,
  tenantId: Uuid,
  plugin: Type.String(),
  version: Type.String(),
  versionId: Uuid,
  mount: Type.String({ description: 'Routes are served under /v1/x/<mount>/….' }),
  capabilities: Type.Array(Type.String(), { description: 'Capabilities the tenant consented to.' }),
  settings: Type.Record(Type.String(), Type.Unknown(), { description: 'Settings; secret ones are never returned.' }),
  secrets: Type.Array(Type.String(), { description: 'Names of the secret settings that have a value.' }),
  status: Type.String(),
  installedBy: Type.String(),
  history: Type.Array(Type.Object({ versionId: Uuid, version: Type.String(), at: Type.String() }), {
    description: 'Versions installed before, oldest first: what rollback returns to.',
  }),
  pendingUpgrade: Type.Union([
    Type.Object(
      {
        versionId: Uuid,
        version: Type.String(),
        capabilities: Type.Object({ added: Type.Array(Type.String()), removed: Type.Array(Type.String()) }),
      },
      { description: 'An upgrade waiting for consent to the capabilities it adds.' },
    ),
    Type.Null(),
  ]),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
})
const InvocationView = Type.Object({
  id: Uuid,
  plugin: Type.String(),
  version: Type.String(),
  entryKind: Type.String(),
  entryName: Type.String(),
  callerKind: Type.String(),
  callerId: Type.String(),
  startedAt: Type.String({ format: 'date-time' }),
  wallMs: Type.Number(),
  cpuMs: Type.Number(),
  hostCalls: Type.Integer(),
  outcome: Type.String(),
  errorCode: Type.Union([Type.String(), Type.Null()]),
  logs: Type.Array(
    Type.Object({
      level: Type.String(),
      message: Type.String(),
      fields: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      time: Type.String(),
    }),
  ),
})
export const TenantQuery = Type.Object({
  tenantId: Type.Optional(
    Type.String({ format: 'uuid', description: 'Platform admins and partner admins act on a tenant they manage.' }),
  ),
})
const IdParams = Type.Object({ id: Uuid })
const PLUGIN_NAME = '^@[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*$'

/**
 * The tenant a request acts on: the caller's own, or — for platform admins and the partner
 * managing it — the one named by `?tenantId=`. Anyone else naming another tenant gets 404.
 */
export async function targetTenant(k: KernelContext, p: Principal, tenantId: string | undefined): Promise<string> {
  if (!p.permissions.has(P.pluginsInstall) && !p.permissions.has(P.platformAdmin))
    throw AUTH.FORBIDDEN({ permission: P.pluginsInstall })
  if (!tenantId || tenantId === p.orgId) {
    if (p.orgKind !== 'tenant') throw KRN.VALIDATION_FAILED({ reason: 'name the tenant with ?tenantId=' })
    return p.orgId
  }
  const [t] = await k.db.unscoped((tx) =>
    tx.sql<{ id: string; partner_id: string | null }>('select id, partner_id from tenants where id = ?::uuid', [
      tenantId,
    ]),
  )
  const allowed =
    t &&
    ((p.orgKind === 'platform' && p.orgId === PLATFORM_ORG) || (p.orgKind === 'partner' && t.partner_id === p.orgId))
  if (!allowed) throw KRN.NOT_FOUND({ what: 'tenant' })
  return t.id
}

/** Routes that may read but not change installations: tenant members with audit.read see them too. */
async function readerTenant(k: KernelContext, request: FastifyRequest, tenantId: string | undefined): Promise<string> {
  const p = principalOf(request)
  if (!tenantId && p.orgKind === 'tenant' && (p.permissions.has(P.auditRead) || p.permissions.has(P.pluginsInstall)))
    return p.orgId
  return targetTenant(k, p, tenantId)
}

/** An installation as the API shows it: never its secrets, with its history and any upgrade awaiting consent. */
export async function installationView(k: KernelContext, inst: Installation) {
  return k.db.inOrg(inst.tenantId, async (tx) => {
    const full = await loadInstallation(tx, inst.id).catch(() => ({ ...inst, history: [], pendingVersionId: null }))
    const v = await k.plugins.versions.byId(tx, full.versionId)
    const pending = full.pendingVersionId ? await k.plugins.versions.byId(tx, full.pendingVersionId) : undefined
    const { secretsEnc: _s, secretNames, pendingVersionId: _p, ...rest } = full
    return {
      ...rest,
      version: v?.version ?? 'unknown',
      secrets: secretNames,
      pendingUpgrade:
        pending && v
          ? {
              versionId: pending.id,
              version: pending.version,
              capabilities: listDiff(v.manifest.capabilities, pending.manifest.capabilities),
            }
          : null,
    }
  })
}

export function registerInstallationRoutes(app: Api, k: KernelContext): void {
  const host = () => k.plugins
  const view = (inst: Installation) => installationView(k, inst)
  const load = async (tx: Parameters<Parameters<typeof orgTx>[2]>[0], id: string) => {
    const [row] = await tx.sql<InstallationRow>(
      `select ${INSTALLATION_COLS} from plugin_installations where id = ?::uuid`,
      [id],
    )
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
      const tenantId = await targetTenant(k, p, request.query.tenantId)
      const body = request.body
      const meta = auditMeta(request)
      const inst = await installVersion(
        k,
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
      const tenantId = await readerTenant(k, request, request.query.tenantId)
      const after = decodeCursor(request.query.cursor)
      const limit = request.query.limit ?? 50
      const rows = await orgTx(k, tenantId, (tx) =>
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
      const tenantId = await readerTenant(k, request, request.query.tenantId)
      return view(await orgTx(k, tenantId, (tx) => load(tx, request.params.id)))
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
      const tenantId = await targetTenant(k, principalOf(request), request.query.tenantId)
      const meta = auditMeta(request)
      const inst = await orgTx(k, tenantId, async (tx) => {
        const current = await load(tx, request.params.id)
        const version = await host().versions.byId(tx, current.versionId)
        if (!version) throw PLG.VERSION_NOT_FOUND({ name: current.plugin })
        let settings = current.settings
        let sealed = current.secretsEnc
        let names = current.secretNames
        if (request.body.settings) {
          const merged: Record<string, unknown> = { ...current.settings, ...openSecrets(k.secrets, current) }
          for (const [key, value] of Object.entries(request.body.settings)) {
            if (value === null) delete merged[key]
            else merged[key] = value
          }
          const split = splitSettings(version, merged)
          settings = split.settings
          names = Object.keys(split.secrets)
          sealed = names.length ? k.secrets.seal(JSON.stringify(split.secrets), secretsAd(current.id)) : null
        }
        const [row] = await tx.sql<InstallationRow>(
          `update plugin_installations set settings = ?::jsonb, secrets_enc = ?, secret_names = ?::text[], status = ?, updated_at = now() where id = ?::uuid returning ${INSTALLATION_COLS}`,
          [JSON.stringify(settings), sealed, names, request.body.status ?? current.status, current.id],
        )
        const changed = Object.keys(request.body.settings ?? {})
        await appendAudit(tx, tenantId, {
          ...meta,
          action:
            request.body.status && request.body.status !== current.status
              ? `plugin.${request.body.status === 'disabled' ? 'disabled' : 'enabled'}`
              : 'plugin.settings.updated',
          target: { kind: 'plugin_installation', id: current.id },
          data: {
            plugin: current.plugin,
            settings: changed.filter((c) => !secretKeys(version).has(c)),
            secrets: changed.filter((c) => secretKeys(version).has(c)),
          },
        })
        return toInstallation(row!)
      })
      host().forgetTenant(tenantId)
      return view(inst)
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
      const tenantId = await targetTenant(k, principalOf(request), request.query.tenantId)
      const keepData = request.query.keepData ?? true
      const meta = auditMeta(request)
      await orgTx(k, tenantId, async (tx) => {
        const current = await load(tx, request.params.id)
        const dependents = await dependentsOf(k, tx, tenantId, current.plugin)
        if (dependents.length && !request.query.force) throw PLG.DEPENDED_ON({ plugin: current.plugin, dependents })
        await tx.sql('delete from plugin_installations where id = ?::uuid', [current.id])
        const deleted = keepData ? 0 : await host().data.dropPluginData(tx, current.plugin)
        await appendAudit(tx, tenantId, {
          ...meta,
          action: 'plugin.uninstalled',
          target: { kind: 'plugin_installation', id: current.id },
          data: { plugin: current.plugin, keepData, recordsDeleted: deleted, dependents },
        })
        await emitEvents(
          tx,
          kernelEvent('marketplace.installation.removed', `installation/${current.id}`, {
            installationId: current.id,
            plugin: current.plugin,
            keepData,
          }),
        )
      })
      host().forgetTenant(tenantId)
      reply.code(204)
      return null
    },
  )

  app.get(
    '/installations/:id/invocations',
    {
      schema: {
        tags: ['plugins'],
        summary: 'Invocation records of an installation, newest first: duration, CPU, host calls, outcome, log lines',
        params: IdParams,
        querystring: Type.Intersect([TenantQuery, Type.Object(PageQuery)]),
        response: { 200: pageOf(InvocationView) },
      },
    },
    async (request) => {
      const tenantId = await readerTenant(k, request, request.query.tenantId)
      await k.plugins.recorder.flush()
      const before = decodeCursor(request.query.cursor)
      const limit = request.query.limit ?? 50
      const rows = await orgTx(k, tenantId, async (tx) => {
        await load(tx, request.params.id)
        return tx.sql<Record<string, unknown>>(
          `select * from plugin_invocations where installation_id = ?::uuid and (?::uuid is null or id < ?::uuid) order by id desc limit ?`,
          [request.params.id, before, before, limit + 1],
        )
      })
      return toPageOf(rows as Array<Record<string, unknown> & { id: string }>, limit, invocationView)
    },
  )
}

/** An invocation row as the API shows it. */
export function invocationView(r: Record<string, unknown>) {
  return {
    id: r.id as string,
    plugin: r.plugin as string,
    version: r.version as string,
    entryKind: r.entry_kind as string,
    entryName: r.entry_name as string,
    callerKind: r.caller_kind as string,
    callerId: r.caller_id as string,
    startedAt: new Date(r.started_at as string).toISOString(),
    wallMs: Number(r.wall_ms),
    cpuMs: Number(r.cpu_ms),
    hostCalls: Number(r.host_calls),
    outcome: r.outcome as string,
    errorCode: (r.error_code as string | null) ?? null,
    logs: (r.logs as Array<{ level: string; message: string; time: string }>) ?? [],
  }
}
