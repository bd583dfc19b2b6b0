import type { Tx } from '../db/database.js'

/**
 * The tenant's workflow figures, per workflow and per step: how many, how long (p50/p95), how
 * many failed, exceptions (instances that failed), human hand-offs, time waiting on people and
 * SLA breaches. Computed from the instances, step history and tasks (row-level security keeps
 * them to the tenant).
 */
export async function workflowMetricsFor(tx: Tx): Promise<Array<Record<string, unknown>>> {
  const instances = await tx.sql<Record<string, unknown>>(
    `select plugin, workflow, count(*)::int as started,
            count(*) filter (where status = 'completed')::int as completed,
            count(*) filter (where status = 'failed')::int as failed,
            count(*) filter (where status = 'cancelled')::int as cancelled,
            count(*) filter (where status in ('running', 'waiting', 'compensating'))::int as active,
            percentile_cont(0.5) within group (order by extract(epoch from finished_at - started_at) * 1000) filter (where finished_at is not null) as p50_ms,
            percentile_cont(0.95) within group (order by extract(epoch from finished_at - started_at) * 1000) filter (where finished_at is not null) as p95_ms
       from workflow_instances group by plugin, workflow order by plugin, workflow`,
  )
  const steps = await tx.sql<Record<string, unknown>>(
    `select i.plugin, i.workflow, s.step, count(*) filter (where s.status <> 'failed')::int as count, count(*) filter (where s.status = 'failed')::int as failures,
            percentile_cont(0.5) within group (order by s.wall_ms) as p50_ms, percentile_cont(0.95) within group (order by s.wall_ms) as p95_ms
       from workflow_steps s join workflow_instances i on i.id = s.instance_id group by i.plugin, i.workflow, s.step order by i.plugin, i.workflow, s.step`,
  )
  const tasks = await tx.sql<Record<string, unknown>>(
    `select plugin, workflow, count(*)::int as handoffs, count(*) filter (where status = 'completed')::int as completed,
            count(*) filter (where escalated_at is not null)::int as sla_breaches,
            coalesce(sum(extract(epoch from completed_at - created_at) * 1000) filter (where completed_at is not null), 0) as waiting_ms_total,
            percentile_cont(0.5) within group (order by extract(epoch from completed_at - created_at) * 1000) filter (where completed_at is not null) as waiting_p50_ms
       from workflow_tasks group by plugin, workflow`,
  )
  const num = (v: unknown) => (v === null || v === undefined ? null : Math.round(Number(v) * 100) / 100)
  return instances.map((w) => {
    const t = tasks.find((x) => x.plugin === w.plugin && x.workflow === w.workflow)
    return {
      plugin: w.plugin,
      workflow: w.workflow,
      started: w.started,
      completed: w.completed,
      failed: w.failed,
      exceptions: w.failed,
      cancelled: w.cancelled,
      active: w.active,
      latencyMs: { p50: num(w.p50_ms), p95: num(w.p95_ms) },
      humanHandoffs: t?.handoffs ?? 0,
      tasksCompleted: t?.completed ?? 0,
      waitingOnPeopleMs: { total: num(t?.waiting_ms_total) ?? 0, p50: num(t?.waiting_p50_ms) },
      slaBreaches: t?.sla_breaches ?? 0,
      steps: steps
        .filter((s) => s.plugin === w.plugin && s.workflow === w.workflow)
        .map((s) => ({
          step: s.step,
          count: s.count,
          failures: s.failures,
          latencyMs: { p50: num(s.p50_ms), p95: num(s.p95_ms) },
        })),
    }
  })
}
