import { Type } from '@sinclair/typebox'
import { v7 as uuidv7 } from 'uuid'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { AUTH, KRN } from '../errors.js'
import { PLATFORM_ORG } from '../db/database.js'
import { appendAudit } from '../audit/audit-log.js'
import { emitEventsTo } from '../events/outbox.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import type { SecretBox } from '../crypto/secret-box.js'
import { AI } from './errors.js'
import { credentialAad, ModelRegistry, modelView, type ModelRow } from './model-registry.js'

const ModelView = Type.Object({
  id: Type.String(),
  alias: Type.String(),
  kind: Type.String(),
  provider: Type.String(),
  endpointUrl: Type.Union([Type.String(), Type.Null()]),
  modelId: Type.String(),
  hasCredential: Type.Boolean(),
  priceInPer1k: Type.Number(),
  priceOutPer1k: Type.Number(),
  noRetention: Type.Boolean(),
  region: Type.Union([Type.String(), Type.Null()]),
  status: Type.String(),
  blockedReason: Type.Union([Type.String(), Type.Null()]),
})
export { ModelView }

const Price = Type.Number({ minimum: 0, maximum: 1_000_000, description: 'money per 1,000 tokens' })
const Editable = {
  endpointUrl: Type.Optional(Type.Union([Type.String({ format: 'uri', maxLength: 2000 }), Type.Null()])),
  modelId: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
  credential: Type.Optional(
    Type.Union([
      Type.String({ minLength: 1, maxLength: 4000, description: 'sealed at rest, never returned' }),
      Type.Null(),
    ]),
  ),
  priceInPer1k: Type.Optional(Price),
  priceOutPer1k: Type.Optional(Price),
  noRetention: Type.Optional(Type.Boolean()),
  region: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
}
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })

function checkEndpoint(provider: string, url: string | null | undefined): void {
  if (provider !== 'huggingface') return
  if (!url || !/^https?:\/\//.test(url)) throw AI.ENDPOINT_REQUIRED()
}

const micros = (v: number | undefined) => (v === undefined ? undefined : Math.round(v * 1e6))

export interface ModelRouteDeps {
  orgTx: OrgTx
  secrets: SecretBox
  registry: Pick<ModelRegistry, 'forget'>
}

/**
 * The model registry (platform admins): register, update, list, block and approve. Blocking
 * stops the model in every process within a second (each keeps the list for 500 ms), tells the
 * tenants that chose or used it (`kernel.ai.model.blocked`), and is audited for the platform and
 * for each of them.
 */
export function registerModelRoutes(app: Api, deps: ModelRouteDeps): void {
  const platformOnly = (request: Parameters<typeof principalOf>[0]) => {
    const p = principalOf(request)
    if (p.orgId !== PLATFORM_ORG) throw AUTH.FORBIDDEN({ permission: P.platformAdmin })
    return p
  }

  app.post(
    '/ai/models',
    {
      preHandler: requirePermission(P.platformAdmin),
      schema: {
        tags: ['ai'],
        summary: 'Register a model (platform admins); its credential is sealed and never returned',
        body: Type.Object(
          {
            alias: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{1,62}$' }),
            kind: Type.Union([Type.Literal('chat'), Type.Literal('embedding')]),
            provider: Type.Union([Type.Literal('huggingface'), Type.Literal('local')]),
            ...Editable,
            modelId: Type.String({ minLength: 1, maxLength: 300 }),
          },
          { additionalProperties: false },
        ),
        response: { 201: ModelView },
      },
    },
    async (request, reply) => {
      platformOnly(request)
      const b = request.body
      checkEndpoint(b.provider, b.endpointUrl)
      const id = uuidv7()
      const meta = auditMeta(request)
      const row = await deps.orgTx(PLATFORM_ORG, async (tx) => {
        const [taken] = await tx.sql('select 1 from ai_models where alias = ?', [b.alias])
        if (taken) throw AI.ALIAS_TAKEN({ alias: b.alias })
        const [created] = await tx.sql<ModelRow>(
          `insert into ai_models (id, alias, kind, provider, endpoint_url, model_id, credential, price_in_micros,
             price_out_micros, no_retention, region) values (?::uuid, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) returning *`,
          [
            id,
            b.alias,
            b.kind,
            b.provider,
            b.endpointUrl ?? null,
            b.modelId,
            b.credential ? deps.secrets.seal(b.credential, credentialAad(id)) : null,
            micros(b.priceInPer1k) ?? 0,
            micros(b.priceOutPer1k) ?? 0,
            b.noRetention ?? false,
            b.region ?? null,
          ],
        )
        await appendAudit(tx, PLATFORM_ORG, {
          ...meta,
          action: 'ai.model.registered',
          target: { kind: 'ai_model', id },
          data: { alias: b.alias, kind: b.kind, provider: b.provider, endpoint: b.endpointUrl ?? null },
        })
        return created!
      })
      deps.registry.forget()
      return reply.code(201).send(modelView(row))
    },
  )

  app.get(
    '/ai/models',
    {
      preHandler: requirePermission(P.platformAdmin),
      schema: {
        tags: ['ai'],
        summary: 'Every registered model (platform admins)',
        response: { 200: Type.Object({ items: Type.Array(ModelView) }) },
      },
    },
    async (request) => {
      platformOnly(request)
      const rows = await deps.orgTx(PLATFORM_ORG, (tx) => tx.sql<ModelRow>('select * from ai_models order by alias'))
      return { items: rows.map(modelView) }
    },
  )

  app.patch(
    '/ai/models/:id',
    {
      preHandler: requirePermission(P.platformAdmin),
      schema: {
        tags: ['ai'],
        summary: 'Update a model: endpoint, model id, credential, prices, data flags (platform admins)',
        params: IdParams,
        body: Type.Object(Editable, { additionalProperties: false, minProperties: 1 }),
        response: { 200: ModelView },
      },
    },
    async (request) => {
      platformOnly(request)
      const b = request.body
      const meta = auditMeta(request)
      const row = await deps.orgTx(PLATFORM_ORG, async (tx) => {
        const m = await ModelRegistry.get(tx, request.params.id, true)
        if (!m) throw KRN.NOT_FOUND({ what: 'model' })
        checkEndpoint(m.provider, b.endpointUrl === undefined ? m.endpoint_url : b.endpointUrl)
        const sets: string[] = []
        const params: unknown[] = []
        const set = (col: string, v: unknown) => {
          if (v === undefined) return
          sets.push(`${col} = ?`)
          params.push(v)
        }
        set('endpoint_url', b.endpointUrl)
        set('model_id', b.modelId)
        set(
          'credential',
          b.credential === undefined ? undefined : b.credential && deps.secrets.seal(b.credential, credentialAad(m.id)),
        )
        set('price_in_micros', micros(b.priceInPer1k))
        set('price_out_micros', micros(b.priceOutPer1k))
        set('no_retention', b.noRetention)
        set('region', b.region)
        const [updated] = await tx.sql<ModelRow>(
          `update ai_models set ${sets.join(', ')}, updated_at = now() where id = ?::uuid returning *`,
          [...params, m.id],
        )
        await appendAudit(tx, PLATFORM_ORG, {
          ...meta,
          action: 'ai.model.updated',
          target: { kind: 'ai_model', id: m.id },
          data: { alias: m.alias, changed: Object.keys(b) },
        })
        return updated!
      })
      deps.registry.forget()
      return modelView(row)
    },
  )

  for (const action of ['block', 'approve'] as const) {
    app.post(
      `/ai/models/:id/${action}`,
      {
        preHandler: requirePermission(P.platformAdmin),
        schema: {
          tags: ['ai'],
          summary:
            action === 'block'
              ? 'Block a model everywhere: calls to it stop within a second, its tenants are told'
              : 'Approve (unblock) a model',
          params: IdParams,
          body:
            action === 'block'
              ? Type.Object({ reason: Type.String({ minLength: 3, maxLength: 2000 }) }, { additionalProperties: false })
              : Type.Object({}, { additionalProperties: false }),
          response: { 200: ModelView },
        },
      },
      async (request) => {
        platformOnly(request)
        const meta = auditMeta(request)
        const reason = (request.body as { reason?: string }).reason ?? null
        const verb = action === 'block' ? 'blocked' : 'unblocked'
        const row = await deps.orgTx(PLATFORM_ORG, async (tx) => {
          const m = await ModelRegistry.get(tx, request.params.id, true)
          if (!m) throw KRN.NOT_FOUND({ what: 'model' })
          const [updated] = await tx.sql<ModelRow>(
            `update ai_models set status = ?, blocked_reason = ?, updated_at = now() where id = ?::uuid returning *`,
            [action === 'block' ? 'blocked' : 'approved', reason, m.id],
          )
          const tenants = (
            await tx.sql<{ tenant_id: string }>('select tenant_id from trellis_ai_tenants_of_model(?)', [m.alias])
          ).map((r) => r.tenant_id)
          const data = { alias: m.alias, ...(reason ? { reason } : {}) }
          await appendAudit(tx, PLATFORM_ORG, {
            ...meta,
            action: `ai.model.${verb}`,
            target: { kind: 'ai_model', id: m.id },
            data: { ...data, tenants: tenants.length },
          })
          for (const tenant of tenants) {
            await tx.useOrg(tenant)
            await appendAudit(tx, tenant, {
              ...meta,
              action: `ai.model.${verb}`,
              target: { kind: 'ai_model', id: m.id },
              data,
            })
          }
          await tx.useOrg(PLATFORM_ORG)
          await emitEventsTo(tx, PLATFORM_ORG, [PLATFORM_ORG, ...tenants], {
            type: `kernel.ai.model.${verb}`,
            subject: `ai-model/${m.alias}`,
            data: { modelId: m.id, ...data },
          })
          return updated!
        })
        deps.registry.forget()
        return modelView(row)
      },
    )
  }
}
