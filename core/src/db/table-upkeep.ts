// Keeps the kernel's tables analyzed and vacuumed where PostgreSQL's autovacuum does not run
// (ADR 0109): the embedded database (PGlite is a single-session server: no autovacuum
// launcher) and a server configured with `autovacuum = off`. Without it the planner plans every
// table as if it had never been filled — a plugin's look-up on a declared unique index walked
// every record of the collection in id order instead — and dead rows are never reclaimed.
import type { Logger } from 'pino'
import type { Database } from './database.js'

/** PostgreSQL's own autovacuum defaults, applied the way its launcher applies them. */
const THRESHOLDS = {
  analyze: { base: 50, scale: 0.1 },
  vacuum: { base: 50, scale: 0.2 },
  insertVacuum: { base: 1000, scale: 0.2 },
}

export interface TableUpkeepOptions {
  /** How often a pass runs; 0 leaves the timer off (tests run {@link TableUpkeep.pass} themselves). Default 30 s. */
  everyMs?: number
}

/** What one pass did. */
export interface UpkeepPass {
  /** Whether the server's autovacuum runs (then only new expression statistics are filled here). */
  autovacuum: boolean
  /** Tables `VACUUM`ed (with `ANALYZE` where due), then tables only `ANALYZE`d. */
  vacuumed: string[]
  analyzed: string[]
  /** False when another kernel process held the pass (PostgreSQL: one pass at a time per database). */
  ran: boolean
}

interface TableStats {
  name: string
  tuples: number
  dead: number
  modified: number
  inserted: number
  /** Expression statistics objects that hold no statistics yet (names). */
  bare: string[]
}

const STATS = `
  select c.relname as name, greatest(c.reltuples, 0)::float8 as tuples, s.n_dead_tup::float8 as dead,
         s.n_mod_since_analyze::float8 as modified, s.n_ins_since_vacuum::float8 as inserted,
         array(select x.stxname::text from pg_statistic_ext x
                where x.stxrelid = c.oid and x.stxexprs is not null
                  and not exists (select 1 from pg_stats_ext_exprs e
                                   where e.statistics_schemaname = s.schemaname and e.statistics_name = x.stxname)) as bare
    from pg_stat_user_tables s join pg_class c on c.oid = s.relid
   where s.schemaname = current_schema()
     -- Only the owner may vacuum or analyze: a login that owns nothing skips every table here
     -- rather than have the server log a warning per table every pass.
     and pg_has_role(c.relowner, 'USAGE')
   order by c.relname`

/** One kernel process's upkeep of the database's tables: a pass every {@link TableUpkeepOptions.everyMs}. */
export class TableUpkeep {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<unknown> | undefined
  private closed = false
  /** Expression statistics a pass already analyzed the table for (over an empty table they stay empty). */
  private readonly analyzedStatistics = new Set<string>()

  constructor(
    private readonly db: Pick<Database, 'embedded' | 'outsideTransaction'>,
    private readonly logger?: Logger,
    private readonly opts: TableUpkeepOptions = {},
  ) {}

  start(): void {
    const every = this.opts.everyMs ?? 30_000
    if (this.closed || this.timer || every <= 0) return
    this.timer = setInterval(() => {
      if (this.running || this.closed) return
      this.running = this.pass()
        .catch((err) => this.logger?.warn({ err }, 'table upkeep failed; the next pass tries again'))
        .finally(() => (this.running = undefined))
    }, every)
    this.timer.unref()
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.timer) clearInterval(this.timer)
    await this.running
  }

  /**
   * One pass: reads each table's activity counters and runs what autovacuum would have run by
   * now — `VACUUM` past the dead-row or inserted-row threshold, `ANALYZE` past the changed-row
   * threshold — and, whether autovacuum runs or not, `ANALYZE` on a table with an expression
   * statistics object that holds nothing yet (made with a plugin's declared index: until it is
   * filled the planner guesses the field matches 0.5 % of the collection).
   */
  pass(): Promise<UpkeepPass> {
    return this.db.outsideTransaction(async (sql) => {
      // Kernel processes sharing a PostgreSQL database take turns; the lock goes with the connection.
      if (!this.db.embedded) {
        const [lock] = await sql<{ ok: boolean }>(
          `select pg_try_advisory_lock(hashtextextended('trellis.table-upkeep', 0)) as ok`,
        )
        if (!lock?.ok) return { autovacuum: false, vacuumed: [], analyzed: [], ran: false }
        // Gentle on a server's disks, as autovacuum is; the embedded database's one connection
        // is better given back sooner.
        await sql(`set vacuum_cost_delay = '2ms'`)
      }
      const [setting] = await sql<{ on: boolean }>(
        `select current_setting('autovacuum') = 'on' and current_setting('track_counts') = 'on' as on`,
      )
      const autovacuum = !this.db.embedded && setting!.on
      const tables = await sql<TableStats>(STATS)
      const done: UpkeepPass = { autovacuum, vacuumed: [], analyzed: [], ran: true }
      for (const t of tables) {
        if (this.closed) break
        const fresh = t.bare.filter((name) => !this.analyzedStatistics.has(name))
        const vacuum = !autovacuum && (over(t.dead, t.tuples, 'vacuum') || over(t.inserted, t.tuples, 'insertVacuum'))
        const analyze = fresh.length > 0 || (!autovacuum && over(t.modified, t.tuples, 'analyze'))
        if (!vacuum && !analyze) continue
        const table = `"${t.name.replace(/"/g, '""')}"`
        const started = performance.now()
        await sql(vacuum ? `vacuum ${analyze ? '(analyze) ' : ''}${table}` : `analyze ${table}`)
        for (const name of t.bare) this.analyzedStatistics.add(name)
        if (vacuum) done.vacuumed.push(t.name)
        else done.analyzed.push(t.name)
        this.logger?.debug(
          { table: t.name, vacuum, analyze, ms: Math.round(performance.now() - started) },
          'table upkeep',
        )
      }
      return done
    })
  }
}

function over(count: number, tuples: number, kind: keyof typeof THRESHOLDS): boolean {
  const { base, scale } = THRESHOLDS[kind]
  return count > base + scale * tuples
}
