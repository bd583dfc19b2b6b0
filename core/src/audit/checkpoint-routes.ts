import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { AuditSealer } from './sealer.js'
import type { KernelConfig } from '../config.js'
import { AUTH } from '../errors.js'
import { PLATFORM_ORG } from '../db/database.js'
import { principalOf, requirePermission } from '../http/guards.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { AuditCheckpointer } from './checkpoints.js'

const CheckpointView = Type.Object({
  tenantId: Type.String({ format: 'uuid' }),
  seq: Type.String({ description: 'The chain head the checkpoint vouches for.' }),
  hash: Type.String(),
  at: Type.String({ format: 'date-time' }),
  kid: Type.String({ description: 'The platform signing key that signed it.' }),
  jws: Type.String({
    description: 'Compact JWS (EdDSA, typ trellis-audit-checkpoint) over {tenantId, seq, hash, at}.',
  }),
})

/** On-demand checkpoints of audit chain heads (ADR 0011), for platform admins. */
export interface CheckpointRouteDeps {
  sealer: Pick<AuditSealer, 'sealTenant' | 'sealAll'>
  /** What signing and publishing checkpoints needs (see checkpoints.ts), but the directory… */
  checkpoints: Omit<ConstructorParameters<typeof AuditCheckpointer>[0], 'dir'>
  /** …which is read from the configuration at each request (it may change while the kernel runs). */
  config: Pick<KernelConfig, 'auditCheckpointDir'>
}

export function registerCheckpointRoutes(app: Api, deps: CheckpointRouteDeps): void {
  app.post(
    '/platform/audit/checkpoints',
    {
      preHandler: requirePermission(P.platformAdmin),
      schema: {
        tags: ['audit'],
        summary: 'Sign and publish checkpoints of audit chain heads now (platform admins)',
        description:
          "Seals pending entries, then signs the head of each organisation's chain (`{}`), or only `orgId`'s, and publishes it: a `kernel.audit.checkpoint` event in that organisation's stream and, when TRELLIS_AUDIT_CHECKPOINT_DIR is set, a line in `<dir>/<orgId>.jsonl`. Keep them outside Trellis; `trellis audit verify --checkpoints` checks the chains against them.",
        body: Type.Object(
          {
            orgId: Type.Optional(
              Type.String({
                format: 'uuid',
                description:
                  "Only this organisation (tenant, partner, or the platform's all-zero id); every organisation when absent.",
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(CheckpointView) }) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.orgKind !== 'platform' || p.orgId !== PLATFORM_ORG) throw AUTH.FORBIDDEN({ permission: P.platformAdmin })
      const orgId = request.body.orgId
      if (orgId) await deps.sealer.sealTenant(orgId)
      else await deps.sealer.sealAll()
      const checkpointer = new AuditCheckpointer({ ...deps.checkpoints, dir: deps.config.auditCheckpointDir })
      return { items: await checkpointer.checkpointAll({ orgs: orgId ? [orgId] : undefined, force: true }) }
    },
  )
}
