import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { AUTH, KRN } from '../errors.js'
import { appendAudit } from '../audit/audit-log.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import type { Principal } from '../identity/principal.js'
import { AI } from './errors.js'
import type { ModelRegistry } from './model-registry.js'
import { modelView } from './model-registry.js'
import { DEFAULT_CHAT, DEFAULT_EMBED, offeredModels, readTenantAi } from './tenant-ai.js'
import { ModelView } from './model-routes.js'
import { periodOf } from './usage-period.js'

const Aliases = Type.Array(Type.String({ maxLength: 64 }), { maxItems: 100, uniqueItems: true })

export interface SettingsRouteDeps {
  orgTx: OrgTx
  registry: Pick<ModelRegistry, 'all' | 'forget'>
  now: () => number
}

/** Tenant admins and partner admins configure AI for their organisation. */
function manager(p: Principal): 'tenant' | 'partner' {
  if (p.orgKind === 'tenant' && p.permissions.has(P.pluginsInstall)) return 'tenant'
  if (p.orgKind === 'partner' && p.permissions.has(P.tenantsManage)) return 'partner'
  throw AUTH.FORBIDDEN({ permission: p.orgKind === 'partner' ? P.tenantsManage : P.pluginsInstall })
}

/**
 * AI settings: a tenant admin turns AI on or off, picks its chat and embedding models among
 * those it is offered, narrows them further, chooses whether prompt injection is logged or
 * blocked and whether call records keep the (masked) text; a partner admin narrows the approved
 * models its tenants are offered. Budgets: a tenant admin sets its tenant's and its
 * installations' monthly budgets, a partner admin the one for all its tenants together.
 */
export function registerSettingsRoutes(app: Api, deps: SettingsRouteDeps): void {
  const SettingsView = Type.Object({
    enabled: Type.Boolean(),
    chatModel: Type.String(),
    embedModel: Type.String(),
    offered: Type.Union([Aliases, Type.Null()]),
    injectionMode: Type.String(),
    keepText: Type.Boolean(),
    models: Type.Array(ModelView),
  })
  const view = async (orgId: string, kind: 'tenant' | 'partner') => {
    const models = await deps.registry.all()
    return deps.orgTx(orgId, async (tx) => {
      if (kind === 'partner') {
        const [s] = await tx.sql<{ offered: string[] | null }>(
          'select offered from ai_settings where tenant_id = ?::uuid',
          [orgId],
        )
        const offered = s?.offered ?? null
        return {
          enabled: true,
          chatModel: DEFAULT_CHAT,
          embedModel: DEFAULT_EMBED,
          offered,
          injectionMode: 'log',
          keepText: true,
          models: offeredModels(models, { offered: null, partnerOffered: offered }).map(modelView),
        }
      }
      const s = await readTenantAi(tx, orgId)
      return {
        enabled: s.enabled,
        chatModel: s.chatModel ?? DEFAULT_CHAT,
        embedModel: s.embedModel ?? DEFAULT_EMBED,
        offered: s.offered,
        injectionMode: s.injectionMode,
        keepText: s.keepText,
        models: offeredModels(models, s).map(modelView),
      }
    })
  }

  app.get(
    '/ai/settings',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['ai'],
        summary: "Your organisation's AI settings and the models it is offered",
        response: { 200: SettingsView },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.orgKind === 'platform') throw AUTH.FORBIDDEN({ permission: P.pluginsInstall })
      return view(p.orgId, p.orgKind === 'partner' ? 'partner' : 'tenant')
    },
  )

  app.put(
    '/ai/settings',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['ai'],
        summary: 'Change AI settings (tenant admins: all fields; partner admins: offered, for their tenants)',
        body: Type.Object(
          {
            enabled: Type.Optional(Type.Boolean()),
            chatModel: Type.Optional(Type.String({ maxLength: 64 })),
            embedModel: Type.Optional(Type.String({ maxLength: 64 })),
            offered: Type.Optional(Type.Union([Aliases, Type.Null()])),
            injectionMode: Type.Optional(Type.Union([Type.Literal('log'), Type.Literal('block')])),
            keepText: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: { 200: SettingsView },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const kind = manager(p)
      const b = request.body
      if (kind === 'partner' && Object.keys(b).some((k) => k !== 'offered'))
        throw KRN.VALIDATION_FAILED({ reason: 'a partner sets only "offered" (the models its tenants may use)' })
      const models = await deps.registry.all()
      for (const alias of b.offered ?? [])
        if (!models.some((m) => m.alias === alias)) throw AI.MODEL_NOT_FOUND({ model: alias })
      await deps.orgTx(p.orgId, async (tx) => {
        if (kind === 'tenant') {
          const current = await readTenantAi(tx, p.orgId)
          const next = { ...current, offered: b.offered === undefined ? current.offered : b.offered }
          for (const [alias, k] of [
            [b.chatModel, 'chat'],
            [b.embedModel, 'embedding'],
          ] as const) {
            if (alias === undefined) continue
            const m = models.find((x) => x.alias === alias)
            if (!m) throw AI.MODEL_NOT_FOUND({ model: alias })
            if (m.kind !== k) throw AI.MODEL_KIND_MISMATCH({ model: alias, kind: k })
            if (m.status === 'blocked') throw AI.MODEL_BLOCKED({ model: alias })
            if (!offeredModels([m], next).length) throw AI.MODEL_NOT_OFFERED({ model: alias })
          }
        }
        await tx.sql(
          `insert into ai_settings (tenant_id, enabled, chat_model, embed_model, offered, injection_mode, keep_text)
           values (?::uuid, coalesce(?, true), ?, ?, ?::text[], coalesce(?, 'log'), coalesce(?, true))
           on conflict (tenant_id) do update set
             enabled = coalesce(?, ai_settings.enabled),
             chat_model = coalesce(?, ai_settings.chat_model),
             embed_model = coalesce(?, ai_settings.embed_model),
             offered = case when ? then ?::text[] else ai_settings.offered end,
             injection_mode = coalesce(?, ai_settings.injection_mode),
             keep_text = coalesce(?, ai_settings.keep_text),
             updated_at = now()`,
          [
            p.orgId,
            b.enabled ?? null,
            b.chatModel ?? null,
            b.embedModel ?? null,
            b.offered ?? null,
            b.injectionMode ?? null,
            b.keepText ?? null,
            b.enabled ?? null,
            b.chatModel ?? null,
            b.embedModel ?? null,
            b.offered !== undefined,
            b.offered ?? null,
            b.injectionMode ?? null,
            b.keepText ?? null,
          ],
        )
        await appendAudit(tx, p.orgId, {
          ...auditMeta(request),
          action: 'ai.settings.updated',
          target: { kind: 'ai_settings', id: p.orgId },
          data: b as Record<string, unknown>,
        })
      })
      // Every process drops its copy of tenants' AI settings (and the model list with it).
      deps.registry.forget()
      return view(p.orgId, kind)
    },
  )

  const BudgetView = Type.Object({
    scope: Type.String(),
    scopeId: Type.String(),
    unit: Type.String(),
    monthlyLimit: Type.Number(),
    period: Type.String(),
    used: Type.Number(),
    reserved: Type.Number(),
  })

  app.put(
    '/ai/budgets',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['ai'],
        summary:
          'Set a monthly AI budget in tokens or money (micro-units): the tenant, one of its installations, or (partner admins) all the partner\u2019s tenants',
        body: Type.Object(
          {
            scope: Type.Union([Type.Literal('tenant'), Type.Literal('installation'), Type.Literal('partner')]),
            installationId: Type.Optional(Type.String({ format: 'uuid' })),
            unit: Type.Union([Type.Literal('tokens'), Type.Literal('micros')]),
            monthlyLimit: Type.Integer({ minimum: 0, maximum: 1e15 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: BudgetView },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const kind = manager(p)
      const b = request.body
      if ((b.scope === 'partner') !== (kind === 'partner'))
        throw KRN.VALIDATION_FAILED({
          reason: `a ${kind} admin sets ${kind === 'partner' ? 'the partner' : 'tenant or installation'} budgets`,
        })
      if (b.scope === 'installation' && !b.installationId)
        throw KRN.VALIDATION_FAILED({ reason: 'an installation budget needs installationId' })
      const period = periodOf(deps.now())
      const set = await deps.orgTx(p.orgId, async (tx) => {
        let scopeId = p.orgId
        if (b.scope === 'installation') {
          const [inst] = await tx.sql<{ id: string }>('select id from plugin_installations where id = ?::uuid', [
            b.installationId,
          ])
          if (!inst) throw KRN.NOT_FOUND({ what: 'installation' })
          scopeId = inst.id
        }
        await tx.sql(
          `insert into ai_budgets (scope_id, scope, unit, monthly_limit) values (?::uuid, ?, ?, ?)
           on conflict (tenant_id, scope_id) do update set unit = excluded.unit, monthly_limit = excluded.monthly_limit`,
          [scopeId, b.scope, b.unit, b.monthlyLimit],
        )
        await appendAudit(tx, p.orgId, {
          ...auditMeta(request),
          action: 'ai.budget.set',
          target: { kind: 'ai_budget', id: scopeId },
          data: { scope: b.scope, unit: b.unit, monthlyLimit: b.monthlyLimit },
        })
        const [u] = await tx.sql<{ used: string; reserved: string }>(
          'select used, reserved from ai_usage where scope_id = ?::uuid and period = ?',
          [scopeId, period],
        )
        return {
          scope: b.scope,
          scopeId,
          unit: b.unit,
          monthlyLimit: b.monthlyLimit,
          period,
          used: Number(u?.used ?? 0),
          reserved: Number(u?.reserved ?? 0),
        }
      })
      // A budget now applies: every process drops its "no budget" answer for the tenants it governs.
      deps.registry.forget()
      return set
    },
  )

  app.get(
    '/ai/budgets',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['ai'],
        summary: "Your organisation's AI budgets with this month's use",
        response: { 200: Type.Object({ items: Type.Array(BudgetView) }) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      manager(p)
      const period = periodOf(deps.now())
      const rows = await deps.orgTx(p.orgId, (tx) =>
        tx.sql<{
          scope: string
          scope_id: string
          unit: string
          monthly_limit: string
          used: string | null
          reserved: string | null
        }>(
          `select b.scope, b.scope_id, b.unit, b.monthly_limit, u.used, u.reserved from ai_budgets b
             left join ai_usage u on u.tenant_id = b.tenant_id and u.scope_id = b.scope_id and u.period = ?
            order by b.scope, b.scope_id`,
          [period],
        ),
      )
      return {
        items: rows.map((r) => ({
          scope: r.scope,
          scopeId: r.scope_id,
          unit: r.unit,
          monthlyLimit: Number(r.monthly_limit),
          period,
          used: Number(r.used ?? 0),
          reserved: Number(r.reserved ?? 0),
        })),
      }
    },
  )
}
