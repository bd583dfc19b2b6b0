// BENCH_POOL_WAITS=1: how long the kernel's background transactions waited for a connection of
// the background pool, by the first statement they ran — printed to stderr by `report` and reset.
// The wait is the time from asking for the transaction to its function starting (acquiring the
// connection, `begin`, the role and the tenant), so a few hundred microseconds is the floor.
import type { TransactionSource, Tx } from '../../core/src/db/database.js'

interface Tally {
  n: number
  ms: number
  max: number
}

export function watchPoolWaits(source: TransactionSource): { report: (label: string) => void } {
  const tallies = new Map<string, Tally>()
  const inOrg = source.inOrg.bind(source)
  ;(source as { inOrg: TransactionSource['inOrg'] }).inOrg = ((orgId, fn, role) => {
    const t0 = performance.now()
    return inOrg(
      orgId,
      (tx, status) => {
        const waited = performance.now() - t0
        let counted = false
        const count = (sql: string) => {
          if (counted) return
          counted = true
          const key = sql.replace(/\s+/g, ' ').trim().slice(0, 48)
          const t = tallies.get(key) ?? { n: 0, ms: 0, max: 0 }
          t.n++
          t.ms += waited
          t.max = Math.max(t.max, waited)
          tallies.set(key, t)
        }
        const wrapped = Object.create(tx) as Tx
        for (const m of ['sql', 'sqlOnce'] as const) {
          const run = tx[m].bind(tx)
          ;(wrapped as Pick<Tx, typeof m>)[m] = ((text: string, params?: unknown[]) => {
            count(text)
            return run(text, params)
          }) as Tx[typeof m]
        }
        return fn(wrapped, status)
      },
      role,
    )
  }) as TransactionSource['inOrg']
  return {
    report(label) {
      const rows = [...tallies].sort((a, b) => b[1].ms - a[1].ms)
      const all = rows.reduce((s, [, t]) => s + t.n, 0)
      process.stderr.write(`background pool waits, ${label}: ${all} transactions\n`)
      for (const [k, t] of rows)
        process.stderr.write(
          `  ${String(t.n).padStart(6)} × mean ${(t.ms / t.n).toFixed(2).padStart(7)} ms, max ${t.max.toFixed(1).padStart(7)} ms  ${k}\n`,
        )
      tallies.clear()
    },
  }
}
