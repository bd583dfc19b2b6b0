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
const COLS =
  '(id, tenant_id, installation_id, plugin, version, entry_kind, entry_name, caller_kind, caller_id, started_at, wall_ms, cpu_ms, host_calls, outcome, error_code, logs, input, transcript)'
const VALUES =
  '(?::uuid, ?::uuid, ?::uuid, ?, ?, ?, ?, ?, ?, ?::timestamptz, ?, ?, ?, ?, ?, ?::jsonb, ?::jsonb, ?::jsonb)'

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
      for (let i = 0; i < rows.length; i += 500) {
        const chunk = rows.slice(i, i + 500)
        try {
          await this.db.inOrg(tenantId, (tx) =>
            tx.sql(
              `insert into plugin_invocations ${COLS} values ${chunk.map(() => VALUES).join(', ')} on conflict (id) do nothing`,
              chunk.flatMap((r) => [
                r.id,
                r.tenantId,
                r.installationId,
                r.plugin,
                r.version,
                r.entryKind,
                r.entryName,
                r.callerKind,
                r.callerId,
                r.startedAt,
                r.wallMs,
                r.cpuMs,
                r.hostCalls,
                r.outcome,
                r.errorCode,
                JSON.stringify(r.logs),
                r.input === undefined ? null : JSON.stringify(r.input),
                r.transcript ? JSON.stringify(r.transcript) : null,
              ]),
            ),
          )
        } catch (err) {
          this.logger.warn({ err, tenantId, dropped: chunk.length }, 'plugin invocation records could not be written')
        }
      }
    }
  }
}
