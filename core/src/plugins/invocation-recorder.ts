import type { Logger } from 'pino'
import type { Database } from '../db/database.js'
import type { Transcript } from './invocation-transcript.js'

/** What is kept of one plugin invocation: the tenant admin reads it all, the publisher all but tenant, caller and logs. */
export interface InvocationRecord {
  id: string
  tenantId: string
  installationId: string
  plugin: string
  version: string
  entryKind: string
  entryName: string
  callerKind: string
  callerId: string
  startedAt: string
  wallMs: number
  cpuMs: number
  hostCalls: number
  outcome: 'ok' | 'error'
  errorCode: string | null
  logs: Array<{ level: string; message: string; fields?: Record<string, unknown>; time: string }>
  /** A bounded, masked summary of what the plugin was given. */
  input?: unknown
  /** The host calls it made (invocation-transcript.ts). */
  transcript?: Transcript
}

const MAX_LOG_LINES = 100
const MAX_LOG_MESSAGE = 2000
const CHUNK = 500
/**
 * One text for every batch size: the rows travel as one JSON array, opened into records by
 * PostgreSQL. The kernel keeps each text as a named prepared statement on every connection, so a
 * text per batch size (one `values` tuple per record) would prepare up to {@link CHUNK} statements
 * per connection.
 */
const INSERT = `insert into plugin_invocations (id, tenant_id, installation_id, plugin, version, entry_kind,
    entry_name, caller_kind, caller_id, started_at, wall_ms, cpu_ms, host_calls, outcome, error_code, logs, input, transcript)
  select id, tenant_id, installation_id, plugin, version, entry_kind, entry_name, caller_kind, caller_id,
    started_at, wall_ms, cpu_ms, host_calls, outcome, error_code, logs, input, transcript
  from jsonb_to_recordset(?::jsonb) as r(id uuid, tenant_id uuid, installation_id uuid, plugin text, version text,
    entry_kind text, entry_name text, caller_kind text, caller_id text, started_at timestamptz, wall_ms real,
    cpu_ms real, host_calls int, outcome text, error_code text, logs jsonb, input jsonb, transcript jsonb)
  on conflict (id) do nothing`

/** One record as a row of {@link INSERT}'s recordset. */
const row = (r: InvocationRecord) => ({
  id: r.id,
  tenant_id: r.tenantId,
  installation_id: r.installationId,
  plugin: r.plugin,
  version: r.version,
  entry_kind: r.entryKind,
  entry_name: r.entryName,
  caller_kind: r.callerKind,
  caller_id: r.callerId,
  started_at: r.startedAt,
  wall_ms: r.wallMs,
  cpu_ms: r.cpuMs,
  host_calls: r.hostCalls,
  outcome: r.outcome,
  error_code: r.errorCode,
  logs: r.logs,
  input: r.input ?? null,
  transcript: r.transcript ?? null,
})

/**
 * Buffers invocation records and writes them shortly after, one statement per tenant per
 * flush, in each tenant's own transaction: records survive the invocation's rollback, and the
 * hot path pays no extra round trip.
 */
export class InvocationRecorder {
  private buffer: InvocationRecord[] = []
  private timer: NodeJS.Timeout | undefined
  private flushing: Promise<void> = Promise.resolve()

  constructor(
    private readonly db: Database,
    private readonly logger: Logger,
    private readonly delayMs = 200,
  ) {}

  record(rec: InvocationRecord): void {
    if (rec.logs.length > MAX_LOG_LINES)
      rec.logs = [
        ...rec.logs.slice(0, MAX_LOG_LINES),
        {
          level: 'warn',
          message: `${rec.logs.length - MAX_LOG_LINES} more log lines dropped`,
          time: rec.logs[MAX_LOG_LINES]!.time,
        },
      ]
    for (const l of rec.logs)
      if (l.message.length > MAX_LOG_MESSAGE) l.message = `${l.message.slice(0, MAX_LOG_MESSAGE)}…`
    this.buffer.push(rec)
    if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.delayMs)
      this.timer.unref()
    }
  }

  /** Writes everything buffered so far. */
  flush(): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    const batch = this.buffer
    this.buffer = []
    this.flushing = this.flushing.then(() => this.write(batch))
    return this.flushing
  }

  private async write(batch: InvocationRecord[]): Promise<void> {
    const byTenant = new Map<string, InvocationRecord[]>()
    for (const r of batch) (byTenant.get(r.tenantId) ?? byTenant.set(r.tenantId, []).get(r.tenantId)!).push(r)
    for (const [tenantId, rows] of byTenant) {
      for (let i = 0; i < rows.length; i += CHUNK) {
        const chunk = rows.slice(i, i + CHUNK)
        try {
          await this.db.inOrg(tenantId, (tx) => tx.sql(INSERT, [JSON.stringify(chunk.map(row))]))
        } catch (err) {
          this.logger.warn({ err, tenantId, dropped: chunk.length }, 'plugin invocation records could not be written')
        }
      }
    }
  }
}
