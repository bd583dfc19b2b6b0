// A breached alert rule with a task role opens a task for that role: the metric, the period,
// the value and the threshold (or the anomaly's period) are what the person sees.
import { defineWorkflow, flow } from '@trellis/plugin-sdk'

interface AlertBreached {
  event: {
    data: {
      breachId: string
      ruleId: string
      metric: string
      kind: string
      grain: string
      period: string
      value: number
      op: string | null
      threshold: number | null
      anomalyId: string | null
      taskRole: string | null
      /** Hours the role has to act before the task is escalated (the rule's SLA). */
      taskSlaHours?: number | null
    }
  }
}

/** "net_sales above 100 on day 2025-03-01: 160" — what the breach was, in one line. */
export function breachTitle(d: AlertBreached['event']['data']): string {
  const what = d.kind === 'threshold' ? `${d.op} ${d.threshold}` : 'anomalous'
  return `${d.metric} ${what} for ${d.grain} ${d.period}: ${d.value}`
}

export const alertTask = defineWorkflow({
  steps: {
    open: async (input: AlertBreached) => {
      const d = input.event.data
      if (!d.taskRole) return flow.complete({ breachId: d.breachId, task: false })
      return flow.task({
        title: breachTitle(d),
        role: d.taskRole,
        outcomes: ['resolved', 'dismissed'],
        ...(d.taskSlaHours ? { slaMs: Math.round(d.taskSlaHours * 3_600_000) } : {}),
        next: { resolved: 'close', dismissed: 'close' },
        data: {
          metric: d.metric,
          kind: d.kind,
          grain: d.grain,
          period: d.period,
          value: d.value,
          op: d.op,
          threshold: d.threshold,
          ruleId: d.ruleId,
          breachId: d.breachId,
          anomalyId: d.anomalyId,
        },
        input: { breachId: d.breachId },
      })
    },
    close: async (input: { outcome: string; by: string; input: { breachId: string } }) =>
      flow.complete({ breachId: input.input.breachId, outcome: input.outcome, by: input.by }),
  },
})
