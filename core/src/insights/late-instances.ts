/**
 * Late workflow instances (partner onboardings, order exceptions, any long-running workflow):
 * each running instance's elapsed time against the durations of the completed instances of the
 * same workflow. The probability that one still open after `elapsed` days finishes after `due`
 * days is the share of completed instances that lasted longer than `elapsed` and also longer
 * than `due` (the empirical conditional survival, {@link lateProbability}): no distribution is
 * assumed, and a person can count the instances it rests on.
 */
import { quantileSorted } from 'simple-statistics'
import type { Tx } from '../db/database.js'
import { lateProbability } from './risk.js'

/** Most completed instances the distribution is drawn from (the latest finished). */
export const MAX_COMPLETED = 1000
/** Most running instances one answer judges (the oldest first). */
export const MAX_RUNNING = 500

const DAY_MS = 86_400_000

/** One running instance, judged. */
export interface LateInstance {
  instanceId: string
  startedAt: string
  elapsedDays: number
  /** Already past the due time. */
  overdue: boolean
  /** Completed instances that lasted longer than this one has so far: what the probability rests on. */
  comparable: number
  /** P(finishes after `due` days | still open after `elapsed`); `null` with no comparable instance. */
  probabilityLate: number | null
  /** The median duration of the comparable instances, in days: when it should be done. */
  expectedDays: number | null
}

/** The answer of {@link lateInstances}. */
export interface LateInstancesAnswer {
  plugin: string
  workflow: string
  dueDays: number
  asOf: string
  method: { name: string; formula: string; completed: number }
  /** The completed instances' durations in days. */
  completed: { count: number; median: number | null; p80: number | null; p90: number | null; max: number | null }
  running: LateInstance[]
}

const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits

/** Judges the running instances of `plugin`'s `workflow` in the transaction's tenant at `now`. */
export async function lateInstances(
  tx: Tx,
  plugin: string,
  workflow: string,
  dueDays: number,
  now: Date,
): Promise<LateInstancesAnswer> {
  const done = await tx.sql<{ ms: string }>(
    `select (extract(epoch from finished_at - started_at) * 1000)::bigint::text as ms from workflow_instances
      where plugin = ? and workflow = ? and status = 'completed' and finished_at is not null
      order by finished_at desc limit ?`,
    [plugin, workflow, MAX_COMPLETED],
  )
  const open = await tx.sql<{ id: string; started_at: Date }>(
    `select id, started_at from workflow_instances
      where plugin = ? and workflow = ? and status in ('running', 'waiting')
      order by started_at, id limit ?`,
    [plugin, workflow, MAX_RUNNING],
  )
  const durations = done.map((d) => Number(d.ms) / DAY_MS).sort((a, b) => a - b)
  const q = (p: number) => (durations.length ? round(quantileSorted(durations, p)) : null)
  const running = open.map((i): LateInstance => {
    const elapsed = Math.max(0, (now.getTime() - new Date(i.started_at).getTime()) / DAY_MS)
    const survivors = durations.filter((d) => d > elapsed)
    const p = lateProbability(durations, elapsed, dueDays)
    return {
      instanceId: i.id,
      startedAt: new Date(i.started_at).toISOString(),
      elapsedDays: round(elapsed),
      overdue: elapsed > dueDays,
      comparable: survivors.length,
      probabilityLate: p === null ? null : round(p, 4),
      expectedDays: survivors.length ? round(quantileSorted(survivors, 0.5)) : null,
    }
  })
  running.sort((a, b) => (b.probabilityLate ?? -1) - (a.probabilityLate ?? -1) || b.elapsedDays - a.elapsedDays)
  return {
    plugin,
    workflow,
    dueDays,
    asOf: now.toISOString(),
    method: {
      name: 'empirical conditional survival',
      formula:
        'P(late) = #{completed: duration > max(due, elapsed)} / #{completed: duration > elapsed}; null when no completed instance lasted longer than elapsed',
      completed: durations.length,
    },
    completed: {
      count: durations.length,
      median: q(0.5),
      p80: q(0.8),
      p90: q(0.9),
      max: durations.length ? round(durations[durations.length - 1]!) : null,
    },
    running,
  }
}
