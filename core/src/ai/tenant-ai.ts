import type { Tx } from '../db/database.js'
import type { ModelRow } from './model-registry.js'

/** A tenant's AI settings with its partner's offer, read at the start of every call. */
export interface TenantAi {
  enabled: boolean
  chatModel: string | null
  embedModel: string | null
  /** Aliases the tenant narrowed to (null: all it is offered). */
  offered: string[] | null
  /** Aliases its partner offers (null: no partner, or the partner narrows nothing). */
  partnerOffered: string[] | null
  partnerId: string | null
  injectionMode: 'log' | 'block'
  keepText: boolean
}

export const DEFAULT_CHAT = 'local-extractive'
export const DEFAULT_EMBED = 'local-lexical'

export async function readTenantAi(tx: Tx, tenantId: string): Promise<TenantAi> {
  const [s] = await tx.sql<{
    enabled: boolean
    chat_model: string | null
    embed_model: string | null
    offered: string[] | null
    injection_mode: 'log' | 'block'
    keep_text: boolean
    partner_id: string | null
  }>(
    `select s.enabled, s.chat_model, s.embed_model, s.offered, s.injection_mode, s.keep_text, t.partner_id
       from tenants t left join ai_settings s on s.tenant_id = t.id where t.id = ?::uuid`,
    [tenantId],
  )
  const partnerId = s?.partner_id ?? null
  let partnerOffered: string[] | null = null
  if (partnerId) {
    await tx.useOrg(partnerId)
    const [p] = await tx.sql<{ offered: string[] | null }>(
      'select offered from ai_settings where tenant_id = ?::uuid',
      [partnerId],
    )
    partnerOffered = p?.offered ?? null
    await tx.useOrg(tenantId)
  }
  return {
    enabled: s?.enabled ?? true,
    chatModel: s?.chat_model ?? null,
    embedModel: s?.embed_model ?? null,
    offered: s?.offered ?? null,
    partnerOffered,
    partnerId,
    injectionMode: s?.injection_mode ?? 'log',
    keepText: s?.keep_text ?? true,
  }
}

/** The approved models of `kind` a tenant is offered: the platform's, narrowed by its partner, then by itself. */
export function offeredModels(models: ModelRow[], s: Pick<TenantAi, 'offered' | 'partnerOffered'>, kind?: string) {
  return models.filter(
    (m) =>
      m.status === 'approved' &&
      (!kind || m.kind === kind) &&
      (s.partnerOffered === null || s.partnerOffered.includes(m.alias) || m.provider === 'local') &&
      (s.offered === null || s.offered.includes(m.alias) || m.provider === 'local'),
  )
}
