import type { TransactionSource, Tx } from '../db/database.js'
import type { AiCaller, AiCompleteRequest } from './service.js'

/** A generation as its worker claims it. */
export interface ClaimedGeneration {
  attempt: number
  plugin: string
  event: string
  caller: AiCaller
  request: AiCompleteRequest
}

/** What a generation ended with: the event's data, and what the row keeps of it. */
export interface GenerationOutcome {
  status: 'done' | 'failed'
  result: Record<string, unknown> | null
  errorCode: string | null
  recordId: string | null
}

const at = (ms: number) => new Date(ms).toISOString()

/**
 * Writes a generation as queued, in the transaction of the invocation that asks for it: it
 * commits (or rolls back) with the invocation, whatever becomes of the queue's job.
 */
export async function queueGeneration(
  tx: Tx,
  g: {
    id: string
    installationId: string | null
    plugin: string
    event: string
    caller: AiCaller
    request: AiCompleteRequest
  },
): Promise<void> {
  await tx.sql(
    `insert into ai_generations (id, installation_id, plugin, event, caller, request)
     values (?::uuid, ?::uuid, ?, ?, ?::jsonb, ?::jsonb)`,
    [g.id, g.installationId, g.plugin, g.event, JSON.stringify(g.caller), JSON.stringify(g.request)],
  )
}

/**
 * Claims a generation for one attempt: a queued one, or a running one whose worker's lease ran
 * out (that worker stopped). Null when it is finished or another worker holds it.
 */
export async function claimGeneration(
  tx: Tx,
  id: string,
  nowMs: number,
  leaseMs: number,
): Promise<ClaimedGeneration | null> {
  const [row] = await tx.sql<{
    attempts: number
    plugin: string
    event: string
    caller: AiCaller
    request: AiCompleteRequest
  }>(
    `update ai_generations
        set status = 'running', attempts = attempts + 1, lease_until = ?::timestamptz,
            started_at = coalesce(started_at, ?::timestamptz)
      where id = ?::uuid and (status = 'queued' or (status = 'running' and lease_until < ?::timestamptz))
      returning attempts, plugin, event, caller, request`,
    [at(nowMs + leaseMs), at(nowMs), id, at(nowMs)],
  )
  if (!row) return null
  return { attempt: row.attempts, plugin: row.plugin, event: row.event, caller: row.caller, request: row.request }
}

/**
 * Finishes the attempt that holds the generation — once: false when it is no longer this
 * attempt's (finished already, or claimed again after this worker's lease ran out), and then
 * the caller writes no event. The request (the rendered prompt) is not kept past the end.
 */
export async function finishGeneration(
  tx: Tx,
  id: string,
  attempt: number,
  outcome: GenerationOutcome,
): Promise<boolean> {
  const rows = await tx.sql(
    `update ai_generations
        set status = ?, result = ?::jsonb, error_code = ?, record_id = ?::uuid, finished_at = now(),
            lease_until = null, request = null
      where id = ?::uuid and status = 'running' and attempts = ?
      returning id`,
    [
      outcome.status,
      outcome.result === null ? null : JSON.stringify(outcome.result),
      outcome.errorCode,
      outcome.recordId,
      id,
      attempt,
    ],
  )
  return rows.length === 1
}

/**
 * Unfinished generations whose job was lost — queued for longer than `staleMs` (the process died
 * between the invocation's commit and the queue's add, or the queue lost it), or running past
 * their lease (the worker died and the queue did not run the job again) — marked as swept now
 * (at most once per `staleMs`), across tenants, as the sweeper's role.
 */
export async function sweepGenerations(
  db: TransactionSource,
  nowMs: number,
  staleMs: number,
  limit = 100,
): Promise<Array<{ id: string; tenant_id: string; swept: number }>> {
  return db.inOrg(
    null,
    (tx) =>
      tx.sql<{ id: string; tenant_id: string; swept: number }>(
        `update ai_generations set swept = swept + 1, swept_at = ?::timestamptz
          where id in (
            select id from ai_generations
             where status in ('queued', 'running')
               and coalesce(swept_at, created_at) < ?::timestamptz
               and (status = 'queued' or lease_until < ?::timestamptz)
             order by created_at limit ? for update skip locked)
          returning id, tenant_id, swept`,
        [at(nowMs), at(nowMs - staleMs), at(nowMs), limit],
      ),
    'trellis_events',
  )
}
