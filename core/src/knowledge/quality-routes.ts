import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { principalOf, requirePermission } from '../http/guards.js'
import { rolesOf } from '../workflows/task-access.js'
import { baseMetrics, evaluateBase } from './monitoring.js'
import type { KnowledgeService } from './service.js'
import { findBase, ownBase } from './store.js'
import { Kb } from './route-views.js'

/** Retrieval monitoring per base, its evaluation questions and the evaluation run (hit rate at k, MRR). */
export function registerQualityRoutes(app: Api, deps: { orgTx: OrgTx; knowledge: KnowledgeService }): void {
  const { orgTx, knowledge } = deps

  app.get(
    '/knowledge/:kb/metrics',
    {
      preHandler: requirePermission(P.knowledgeManage),
      schema: {
        tags: ['knowledge'],
        summary: 'Retrieval monitoring: no-answer and escalation rates, citation coverage, top scores, feedback',
        params: Kb,
        querystring: Type.Object({ since: Type.Optional(Type.String({ format: 'date-time' })) }),
      },
    },
    async (request) => {
      const p = principalOf(request)
      return orgTx(p.orgId, async (tx) =>
        baseMetrics(tx, await findBase(tx, p.orgId, request.params.kb), request.query.since ?? null),
      )
    },
  )

  app.put(
    '/knowledge/:kb/eval-questions',
    {
      preHandler: requirePermission(P.knowledgeManage),
      schema: {
        tags: ['knowledge'],
        summary: "Replace the base's evaluation set: questions with the passage text each must find",
        params: Kb,
        body: Type.Object(
          {
            questions: Type.Array(
              Type.Object(
                {
                  question: Type.String({ minLength: 1, maxLength: 2000 }),
                  expect: Type.String({ minLength: 1, maxLength: 2000 }),
                },
                { additionalProperties: false },
              ),
              { maxItems: 1000 },
            ),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const p = principalOf(request)
      return orgTx(p.orgId, async (tx) => {
        const base = await ownBase(tx, p.orgId, request.params.kb)
        await tx.sql('delete from knowledge_eval_questions where kb_id = ?::uuid', [base.id])
        const { questions } = request.body
        if (questions.length)
          await tx.sql(
            `insert into knowledge_eval_questions (id, kb_id, question, expect)
             select gen_random_uuid(), ?::uuid, u.q, u.e from unnest(?::text[], ?::text[]) as u(q, e)`,
            [base.id, questions.map((q) => q.question), questions.map((q) => q.expect)],
          )
        return { questions: questions.length }
      })
    },
  )

  app.post(
    '/knowledge/:kb/evaluate',
    {
      preHandler: requirePermission(P.knowledgeManage),
      schema: {
        tags: ['knowledge'],
        summary: "Run the base's evaluation set: hit rate at k and mean reciprocal rank",
        params: Kb,
        body: Type.Optional(
          Type.Object({ k: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 })) }, { additionalProperties: false }),
        ),
      },
    },
    async (request) => {
      const p = principalOf(request)
      const { base, deps, roles } = await orgTx(p.orgId, async (tx) => ({
        base: await ownBase(tx, p.orgId, request.params.kb),
        deps: await knowledge.deps(tx),
        roles: await rolesOf(tx, p),
      }))
      return evaluateBase((fn) => orgTx(p.orgId, fn), deps, base, p.orgId, roles, request.body?.k ?? 3)
    },
  )
}
