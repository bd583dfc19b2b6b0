/**
 * The copies of a data subject's personal values the kernel itself keeps, and their erasure:
 * invocation inputs, transcripts and log lines, AI interaction text, event payloads in the outbox,
 * the stored responses and errors of webhook attempts (a receiver may echo what it was sent), and
 * audit payloads (the payload only: the entry, its digest and its hash linkage stay, so the chain
 * still verifies).
 * Found by the values' text, in the tenant's rows only (row-level security).
 */
import { sqlArray, type Tx } from '../db/database.js'

/** What was erased from the kernel's own records. */
export interface KernelCopiesErased {
  invocationLogs: number
  aiInteractions: number
  /** Outbox events whose payload named the subject (the payload is emptied, the event kept). */
  eventPayloads: number
  /** Webhook attempts whose stored response or error named the subject (both are cleared). */
  webhookAttempts: number
  auditPayloads: number
  /** Matching audit entries not sealed yet (their payload cannot be erased before sealing). */
  auditUnsealed: number
}

/** Values shorter than this are not searched for (they would match unrelated text). */
export const MIN_SEARCHED_LENGTH = 4

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`)

/** LIKE patterns finding each value as plain text and inside JSON text (escaped as JSON escapes it). */
export function copyPatterns(values: Iterable<string>): string[] {
  const out = new Set<string>()
  for (const v of values) {
    if (v.length < MIN_SEARCHED_LENGTH) continue
    out.add(`%${likeEscape(v)}%`)
    out.add(`%${likeEscape(JSON.stringify(v).slice(1, -1))}%`)
  }
  return [...out]
}

const n = async (tx: Tx, sql: string, params: unknown[]) =>
  Number((await tx.sql<{ n: number }>(sql, params))[0]?.n ?? 0)

/** Runs an `update … where …` and answers how many rows it changed. */
const updated = (tx: Tx, update: string, params: unknown[]) =>
  n(tx, `with gone as (${update} returning 1) select count(*)::int as n from gone`, params)

/** Erases every kernel copy that holds one of `values`, and the audit payloads about `recordIds`. */
export async function eraseKernelCopies(
  tx: Tx,
  values: Iterable<string>,
  recordIds: string[],
): Promise<KernelCopiesErased> {
  const patterns = sqlArray(copyPatterns(values))
  const ids = sqlArray(recordIds)
  const invocationLogs = await updated(
    tx,
    `update plugin_invocations set input = null, transcript = null, logs = '[]'::jsonb
      where (coalesce(input::text, '') || ' ' || coalesce(transcript::text, '') || ' ' || logs::text) like any(?::text[])`,
    [patterns],
  )
  const aiInteractions = await updated(
    tx,
    `update ai_records set prompt = null, answer = null, chunks = '[]'::jsonb, citations = '[]'::jsonb
      where (coalesce(prompt, '') || ' ' || coalesce(answer, '') || ' ' || chunks::text || ' ' || citations::text) like any(?::text[])`,
    [patterns],
  )
  const eventPayloads = await updated(
    tx,
    `update events set data = '{}'::jsonb where data::text like any(?::text[]) and data <> '{}'::jsonb`,
    [patterns],
  )
  const webhookAttempts = await updated(
    tx,
    `update webhook_attempts set response = null, error = null
      where (coalesce(response, '') || ' ' || coalesce(error, '')) like any(?::text[])`,
    [patterns],
  )
  const about = `(data::text like any(?::text[]) or target_id = any(?::text[])) and data <> '{}'::jsonb`
  const auditPayloads = await updated(
    tx,
    `update audit_log set data = '{}'::jsonb, erased_at = now()
      where hash is not null and data_digest is not null and erased_at is null and ${about}`,
    [patterns, ids],
  )
  const auditUnsealed = await n(tx, `select count(*)::int as n from audit_log where hash is null and ${about}`, [
    patterns,
    ids,
  ])
  return { invocationLogs, aiInteractions, eventPayloads, webhookAttempts, auditPayloads, auditUnsealed }
}
