import { PROBLEM_TYPE_PREFIX, problem, type RouteRequest, type RouteResponse } from '@trellis/plugin-sdk'
import { CPL } from './errors.js'
import { cited, type Ctx, type Question } from './types.js'

/**
 * Asks a knowledge base for the caller and keeps the question with its answer. The kernel
 * answers only from approved passages the caller's roles may read and cites them; with no
 * grounded answer it says so, lists the closest sources and escalates to a person.
 */
export async function askAndKeep(
  ctx: Ctx,
  kb: string,
  topic: Question['topic'],
  question: string,
): Promise<Question & { id: string }> {
  const answer = await ctx.knowledge.ask(kb, question)
  const kept: Question = {
    question,
    kb,
    topic,
    answered: answer.answered,
    text: answer.text,
    model: answer.model,
    citations: cited(answer),
    escalationId: answer.escalationId,
    askedBy: `${ctx.caller.kind}:${ctx.caller.id}`,
    askedAt: new Date().toISOString(),
  }
  return ctx.data.questions.insert(kept)
}

/** A knowledge error (an unknown base) as the caller's problem, not a plugin failure. */
export async function answering(run: () => Promise<unknown>): Promise<RouteResponse> {
  try {
    return { status: 200, body: (await run()) as object }
  } catch (err) {
    const e = err as { code?: string; status?: number; title?: string; message?: string }
    if (!e.code?.startsWith('KB_ERR_')) throw err
    const status = e.status ?? 404
    return {
      status,
      headers: { 'content-type': 'application/problem+json' },
      body: {
        type: `${PROBLEM_TYPE_PREFIX}${e.code}`,
        title: e.title ?? 'Knowledge unavailable',
        status,
        code: e.code,
        detail: e.message,
      },
    }
  }
}

export const askRoutes = {
  'POST /ask': (req: RouteRequest<{ question: string; kb?: string }>, ctx: Ctx) =>
    answering(() =>
      askAndKeep(ctx, req.body.kb ?? ctx.settings.knowledgeBase ?? 'sales', 'general', req.body.question),
    ),
  'POST /onboarding/ask': (req: RouteRequest<{ question: string }>, ctx: Ctx) =>
    answering(() => askAndKeep(ctx, ctx.settings.onboardingBase ?? 'onboarding', 'onboarding', req.body.question)),
  'GET /questions': async (req: RouteRequest, ctx: Ctx) => {
    const cursor = typeof req.query.cursor === 'string' ? req.query.cursor : undefined
    const page = await ctx.data.questions.find({
      sort: [{ field: 'askedAt', direction: 'desc' }],
      limit: 50,
      ...(cursor ? { cursor } : {}),
    })
    return { status: 200, body: page }
  },
  'GET /questions/:id': async (req: RouteRequest, ctx: Ctx) => {
    const q = await ctx.data.questions.get(String(req.params.id))
    if (!q) return problem(CPL.QUESTION_NOT_FOUND, `no question ${String(req.params.id)}`)
    return { status: 200, body: q }
  },
}
