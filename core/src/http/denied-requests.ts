import type { Logger } from 'pino'
import type { Database } from '../db/database.js'
import type { AuditSealer } from '../audit/sealer.js'
import type { AuditRecord } from '../audit/audit-log.js'
import { auditedWrite } from '../audit/audited-write.js'
import type { Principal } from '../identity/principal.js'

export interface DeniedRequestsOptions {
  /** Denials of one caller on one route with one code within this window make one audit entry. */
  windowMs?: number
  /** How often windows that ended are written. */
  flushMs?: number
  /** The clock (tests move it). */
  now?: () => number
}

interface Tally {
  orgId: string
  record: AuditRecord & {
    data: { code: string; count: number; method: string; route: string; windowStart: string; windowEnd: string }
  }
}

// Distinct (caller, route, code, window) keys held at once; past this a flush starts at once.
const MAX_PENDING = 10_000

/**
 * Requests refused with 403 go into the audit trail, aggregated: every denial of one caller on
 * one route with one error code within one window becomes a single `security.request.denied`
 * entry with a count, written in the background after the window ends — a caller probing
 * thousands of times costs a handful of rows, never one per request.
 */
export class DeniedRequests {
  private pending = new Map<string, Tally>()
  private readonly windowMs: number
  private readonly now: () => number
  private readonly timer: NodeJS.Timeout
  private flushing: Promise<void> = Promise.resolve()

  constructor(
    private readonly db: Database,
    private readonly sealer: AuditSealer,
    private readonly logger: Logger,
    opts: DeniedRequestsOptions = {},
  ) {
    this.windowMs = opts.windowMs ?? 60_000
    this.now = opts.now ?? Date.now
    this.timer = setInterval(() => void this.flush(false), opts.flushMs ?? Math.min(this.windowMs, 10_000))
    this.timer.unref()
  }

  record(p: Principal, method: string, route: string, code: string, ip: string): void {
    const start = Math.floor(this.now() / this.windowMs) * this.windowMs
    const key = `${p.orgId}|${p.kind}:${p.id}|${method} ${route}|${code}|${start}`
    const tally = this.pending.get(key)
    if (tally) {
      tally.record.data.count++
      return
    }
    this.pending.set(key, {
      orgId: p.orgId,
      record: {
        action: 'security.request.denied',
        actor: { kind: p.kind, id: p.id },
        target: { kind: 'route', id: `${method} ${route}` },
        ip,
        data: {
          code,
          count: 1,
          method,
          route,
          windowStart: new Date(start).toISOString(),
          windowEnd: new Date(start + this.windowMs).toISOString(),
        },
      },
    })
    if (this.pending.size >= MAX_PENDING) void this.flush(true)
  }

  /** Writes the tallies of windows that ended (all of them when `all`). */
  flush(all: boolean): Promise<void> {
    this.flushing = this.flushing.then(() => this.write(all))
    return this.flushing
  }

  private async write(all: boolean): Promise<void> {
    const now = this.now()
    const byOrg = new Map<string, AuditRecord[]>()
    for (const [key, t] of this.pending) {
      if (!all && Date.parse(t.record.data.windowEnd) > now) continue
      this.pending.delete(key)
      let list = byOrg.get(t.orgId)
      if (!list) byOrg.set(t.orgId, (list = []))
      list.push(t.record)
    }
    for (const [orgId, records] of byOrg) {
      try {
        await this.db.inOrg(orgId, (tx) => auditedWrite(tx, { auditOrg: orgId, audit: records }))
        this.sealer.nudge(orgId)
      } catch (err) {
        this.logger.error({ err, orgId, entries: records.length }, 'could not record denied requests in the audit log')
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer)
    await this.flush(true)
  }
}
