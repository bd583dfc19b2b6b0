// What the database's backends are doing while a benchmark side runs: pg_stat_activity sampled
// every `everyMs`, each sample tagged with the side the load generator is driving at that moment,
// and counted per (state, wait event). A backend waiting on a `Lock` is waiting for a row or
// transaction another backend holds; `idle in transaction` is a transaction held open while the
// kernel (or a plugin) does something else; `ClientRead` is the same seen from inside a statement.
import pg from 'pg'

export interface WaitSampler {
  /** Stops sampling; answers per side the share of backend samples in each (state, wait event). */
  stop(): Promise<Map<string, Map<string, number>>>
}

/**
 * Samples pg_stat_activity of the database at `databaseUrl` until stopped. `side()` names what
 * the load generator drives at that moment (samples while it answers undefined are dropped).
 */
export async function sampleWaits(
  databaseUrl: string,
  side: () => string | undefined,
  everyMs = 50,
): Promise<WaitSampler> {
  const db = new pg.Client({ connectionString: databaseUrl })
  await db.connect()
  const counts = new Map<string, Map<string, number>>()
  let running = true
  const loop = (async () => {
    while (running) {
      const s = side()
      const { rows } = await db.query<{ what: string }>(
        `select coalesce(state, '?') || ' / ' || coalesce(wait_event_type || ':' || wait_event, 'on CPU') as what
           from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'`,
      )
      if (s) {
        const m = counts.get(s) ?? new Map<string, number>()
        for (const r of rows) m.set(r.what, (m.get(r.what) ?? 0) + 1)
        m.set('#samples', (m.get('#samples') ?? 0) + 1)
        counts.set(s, m)
      }
      await new Promise((r) => setTimeout(r, everyMs))
    }
  })()
  return {
    async stop() {
      running = false
      await loop
      await db.end()
      return counts
    },
  }
}

/** One line per side: the average number of backends per sample in each (state, wait event), largest first. */
export function formatWaits(counts: Map<string, Map<string, number>>): string[] {
  const out: string[] = []
  for (const [side, m] of counts) {
    const samples = m.get('#samples') ?? 1
    const parts = [...m.entries()]
      .filter(([k]) => k !== '#samples')
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k} ${(n / samples).toFixed(2)}`)
    out.push(`backends per sample, ${side} (${samples} samples): ${parts.join('; ')}`)
  }
  return out
}
