import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import type { KnowledgeService } from './service.js'
import { registerBaseRoutes } from './base-routes.js'
import { registerDocumentRoutes } from './document-routes.js'
import { registerAnswerRoutes } from './answer-routes.js'
import { registerQualityRoutes } from './quality-routes.js'
import { registerEscalationRoutes } from './escalation-routes.js'

/**
 * Knowledge bases (the organisation's own, and its partner's shared ones read-only), their
 * documents and approval, hybrid search, cited answers with escalation, monitoring, evaluation.
 */
export function registerKnowledgeRoutes(app: Api, deps: { orgTx: OrgTx; knowledge: KnowledgeService }): void {
  registerBaseRoutes(app, deps)
  registerDocumentRoutes(app, deps)
  registerAnswerRoutes(app, deps)
  registerQualityRoutes(app, deps)
  registerEscalationRoutes(app, deps)
}
