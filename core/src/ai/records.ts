import { v7 as uuidv7 } from 'uuid'
import type { Tx } from '../db/database.js'
import {
  AUDIT_COLUMNS,
  AUDIT_VALUES,
  type AuditRecord,
  auditRow,
  storableJson,
  storableText,
} from '../audit/audit-log.js'
import type { AiCaller } from './service.js'
import type { SettlementRow } from './budgets.js'

/** One AI call as it is recorded (ai_records) and audited. */
export interface CallRecord {
  caller: AiCaller
  modelAlias: string
  modelId: string
  provider: string
  outcome: 'ok' | 'failed' | 'refused'
  errorCode?: string
  /** Masked texts; null when the tenant keeps no text. */
  prompt: string | null
  answer: string | null
  inputTokens: number
  outputTokens: number
  costMicros: number
  latencyMs: number
  chunks: Array<{ id: string; score: number }>
  citations: number[]
  verdicts: Record<string, unknown>
}

/** Budget rows of the calling organisation that the record's statement settles too (ADR 0101). */
export interface RecordSettlement {
  period: string
  rows: SettlementRow[]
}

/**
 * Writes the record and the audit-chain entry that links to it (target `ai_record/<id>`), and
 * settles `settlement`'s budget rows, in one statement of the caller's transaction — the AI
 * service's own, never a plugin invocation's, so a rolled-back invocation keeps its AI record
 * and usage.
 */
export async function writeRecord(
  tx: Tx,
  rec: CallRecord,
  id: string = uuidv7(),
  settlement?: RecordSettlement,
): Promise<string> {
  const c = rec.caller
  const audit: AuditRecord = {
    action: rec.outcome === 'ok' ? 'ai.call' : `ai.call.${rec.outcome}`,
    actor: c.pluginId
      ? { kind: 'plugin', id: c.installationId ?? c.pluginId }
      : c.userId
        ? { kind: 'user', id: c.userId }
        : { kind: 'system', id: 'ai' },
    target: { kind: 'ai_record', id },
    data: {
      feature: c.feature,
      model: rec.modelAlias,
      tokens: rec.inputTokens + rec.outputTokens,
      costMicros: rec.costMicros,
      ...(rec.errorCode ? { code: rec.errorCode } : {}),
      ...(c.userId && c.pluginId ? { user: c.userId } : {}),
    },
  }
  const settles = settlement !== undefined && settlement.rows.length > 0
  // One statement, one round trip: the budgets' settlement, the record, and its audit-chain entry.
  await tx.sql(
    `with ${
      settles
        ? `usage as (
       update ai_usage u set reserved = greatest(u.reserved - x.release, 0), used = u.used + x.used
         from unnest(?::uuid[], ?::bigint[], ?::bigint[]) as x(scope_id, release, used)
        where u.scope_id = x.scope_id and u.period = ?),
     `
        : ''
    }rec as (
       insert into ai_records (id, user_id, installation_id, plugin, feature, model_alias, model_id, provider, outcome,
         error_code, prompt, answer, input_tokens, output_tokens, cost_micros, latency_ms, chunks, citations, verdicts)
       values (?::uuid, ?::uuid, ?::uuid, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?::jsonb, ?::jsonb))
     insert into audit_log ${AUDIT_COLUMNS} values ${AUDIT_VALUES}`,
    [
      ...(settles
        ? [
            `{${settlement.rows.map((r) => r.scopeId).join(',')}}`,
            `{${settlement.rows.map((r) => r.release).join(',')}}`,
            `{${settlement.rows.map((r) => r.used).join(',')}}`,
            settlement.period,
          ]
        : []),
      id,
      c.userId ?? null,
      c.installationId ?? null,
      c.pluginId ?? null,
      c.feature,
      rec.modelAlias,
      rec.modelId,
      rec.provider,
      rec.outcome,
      rec.errorCode ?? null,
      rec.prompt === null ? null : storableText(rec.prompt),
      rec.answer === null ? null : storableText(rec.answer),
      rec.inputTokens,
      rec.outputTokens,
      rec.costMicros,
      Math.round(rec.latencyMs),
      storableJson(rec.chunks),
      storableJson(rec.citations),
      storableJson(rec.verdicts),
      ...auditRow(c.tenantId, audit),
    ],
  )
  return id
}

/** A record as the API shows it. */
export interface RecordRow {
  id: string
  at: string | Date
  user_id: string | null
  installation_id: string | null
  plugin: string | null
  feature: string
  model_alias: string
  model_id: string
  provider: string
  outcome: string
  error_code: string | null
  prompt: string | null
  answer: string | null
  input_tokens: number
  output_tokens: number
  cost_micros: string | number
  latency_ms: number
  chunks: unknown
  citations: unknown
  verdicts: unknown
}

export function recordView(r: RecordRow) {
  return {
    id: r.id,
    at: new Date(r.at).toISOString(),
    userId: r.user_id,
    installationId: r.installation_id,
    plugin: r.plugin,
    feature: r.feature,
    model: r.model_alias,
    modelId: r.model_id,
    provider: r.provider,
    outcome: r.outcome,
    errorCode: r.error_code,
    prompt: r.prompt,
    answer: r.answer,
    inputTokens: r.input_tokens,
    outputTokens: r.output_tokens,
    costMicros: Number(r.cost_micros),
    latencyMs: r.latency_ms,
    chunks: r.chunks,
    citations: r.citations,
    verdicts: r.verdicts,
  }
}
