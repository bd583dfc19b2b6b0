import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import type { SecretBox } from '../crypto/secret-box.js'
import type { KernelAiService } from './ai-service.js'
import { registerModelRoutes } from './model-routes.js'
import { registerSettingsRoutes } from './settings-routes.js'
import { registerRecordRoutes } from './record-routes.js'
import { registerCallRoutes } from './call-routes.js'

/** Every `/v1/ai/*` route: the registry, settings and budgets, records and usage, direct calls. */
export function registerAiRoutes(app: Api, deps: { orgTx: OrgTx; secrets: SecretBox; ai: KernelAiService }): void {
  const { orgTx, secrets, ai } = deps
  registerModelRoutes(app, { orgTx, secrets, registry: ai.registry })
  registerSettingsRoutes(app, { orgTx, registry: ai.registry, now: ai.now })
  registerRecordRoutes(app, { orgTx, now: ai.now })
  registerCallRoutes(app, { ai })
}
