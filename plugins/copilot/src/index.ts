/**
 * The copilot: questions answered from the tenant's approved knowledge with citations (or an
 * honest "I don't know" and an escalation to a person), implementation questions answered from
 * the partner's onboarding playbooks, and what blocks an order with the passages on resolving
 * it. It reads through the kernel's knowledge service and other plugins' actions with the
 * caller's permissions, and changes nothing itself: people decide.
 */
import { collection, definePlugin, type RouteRequest } from '@trellis/plugin-sdk'
import manifest from '../trellis.plugin.json' with { type: 'json' }
import { askRoutes } from './ask.js'
import { orderBlockers } from './blockers.js'
import { exceptionTriage, type TriageRecord } from './triage.js'
import type { Ctx, Question } from './types.js'

export type { Blockers } from './blockers.js'
export type { Cited, Question } from './types.js'
export type { TriageRecord } from './triage.js'
export { CPL } from './errors.js'

export const copilotPlugin = definePlugin({
  manifest,
  collections: { questions: collection<Question>(), triages: collection<TriageRecord>() },
  routes: {
    ...askRoutes,
    'GET /orders/:number/blockers': orderBlockers,
    'GET /triages': async (req: RouteRequest, ctx: Ctx) => {
      const order = typeof req.query.order === 'string' ? req.query.order : undefined
      return {
        status: 200,
        body: await ctx.data.triages.find({
          ...(order ? { where: { order } } : {}),
          sort: [{ field: 'decidedAt', direction: 'desc' }],
          limit: 100,
        }),
      }
    },
  },
  workflows: { exceptionTriage },
})
