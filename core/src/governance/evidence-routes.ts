import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import type { Database } from '../db/database.js'
import type { KernelConfig } from '../config.js'
import type { KernelContext } from '../kernel-context.js'
import type { SigningKeys } from '../identity/signing-keys.js'
import { AUTH } from '../errors.js'
import { appendAudit } from '../audit/audit-log.js'
import { checkpointKeys } from '../audit/checkpoint-signing.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { GOV } from './errors.js'
import { buildEvidence, chainEvidence, type EvidencePack, type EvidencePeriod } from './evidence.js'
import { signEvidence, verifyEvidence, type SignedEvidence } from './evidence-signing.js'

export interface EvidenceRouteDeps {
  orgTx: OrgTx
  db: Database
  config: KernelConfig
  keys: SigningKeys
  /** Seals the organisation's committed audit entries, so the verification covers all of them. */
  sealAudit(orgId: string): Promise<void>
  /** Milliseconds since the epoch (the kernel's clock; tests move it). */
  now(): number
}

/** The services the evidence routes use, from the kernel's. */
export function evidenceRouteDeps(k: KernelContext, orgTx: OrgTx): EvidenceRouteDeps {
  return {
    orgTx,
    db: k.db,
    config: k.config,
    keys: k.keys,
    sealAudit: async (org) => {
      await k.sealer.sealTenant(org)
    },
    now: () => k.workflows.clock.now(),
  }
}

const DAY = 86_400_000
/** Default period: the last 90 days. Longest: 400 days (a year with a margin). */
const DEFAULT_DAYS = 90
const MAX_DAYS = 400

/** The period a request asks for, or `GOV_ERR_EVIDENCE_RANGE`. */
export function evidencePeriod(query: { from?: string; to?: string }, now: number): EvidencePeriod {
  const to = query.to === undefined ? now : Date.parse(query.to)
  const from = query.from === undefined ? to - DEFAULT_DAYS * DAY : Date.parse(query.from)
  if (Number.isNaN(from) || Number.isNaN(to))
    throw GOV.EVIDENCE_RANGE({ reason: 'from and to are ISO 8601 dates or date-times' })
  if (from >= to) throw GOV.EVIDENCE_RANGE({ reason: 'from must be before to' })
  if (to - from > MAX_DAYS * DAY) throw GOV.EVIDENCE_RANGE({ reason: `a period is at most ${MAX_DAYS} days` })
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString() }
}

/** Builds and signs the pack of `orgId` (the API and `trellis evidence` both use it). */
export async function signedEvidence(
  deps: Omit<EvidenceRouteDeps, 'orgTx'> & { orgTx: OrgTx },
  orgId: string,
  period: EvidencePeriod,
  audited?: Parameters<typeof appendAudit>[2],
): Promise<SignedEvidence> {
  await deps.sealAudit(orgId)
  const auditChain = await chainEvidence(deps.db, orgId)
  return deps.orgTx(
    orgId,
    async (tx) => {
      const body = await buildEvidence(tx, deps, orgId, period, new Date(deps.now()))
      const signed = await signEvidence(deps.keys, { ...body, auditChain } as EvidencePack)
      if (audited)
        await appendAudit(tx, orgId, {
          ...audited,
          data: { period, sha256: signed.signature.sha256, kid: signed.signature.kid },
        })
      return signed
    },
    { allowSuspended: true },
  )
}

/**
 * `GET /v1/compliance/evidence` — the signed evidence pack of the caller's organisation (a tenant,
 * or the platform) — and `POST /v1/compliance/evidence/verify`, which checks one.
 */
export function registerEvidenceRoutes(app: Api, deps: EvidenceRouteDeps): void {
  app.get(
    '/compliance/evidence',
    {
      preHandler: requirePermission(P.auditRead),
      schema: {
        tags: ['governance'],
        summary:
          'A signed evidence pack for your organisation: access review, marketplace decisions, consents, kill switch, retention runs, audit-chain verification, configuration',
        querystring: Type.Object(
          {
            from: Type.Optional(
              Type.String({ description: 'Start of the period (ISO 8601); default 90 days before `to`' }),
            ),
            to: Type.Optional(Type.String({ description: 'End of the period, exclusive (ISO 8601); default now' })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.orgKind !== 'tenant' && p.orgKind !== 'platform') throw AUTH.FORBIDDEN({ permission: P.auditRead })
      const period = evidencePeriod(request.query, deps.now())
      return signedEvidence(deps, p.orgId, period, {
        ...auditMeta(request),
        action: 'governance.evidence.generated',
        target: { kind: 'organisation', id: p.orgId },
      })
    },
  )

  app.post(
    '/compliance/evidence/verify',
    {
      preHandler: requirePermission(),
      bodyLimit: 32 * 1024 * 1024,
      schema: {
        tags: ['governance'],
        summary: "Check an evidence pack's signature against the platform's keys",
        body: Type.Object({ pack: Type.Unknown(), signature: Type.Unknown() }),
        response: {
          200: Type.Object({
            valid: Type.Boolean(),
            reason: Type.Optional(Type.String()),
            kid: Type.Optional(Type.String()),
            sha256: Type.Optional(Type.String()),
            scope: Type.Optional(Type.String()),
            generatedAt: Type.Optional(Type.String()),
          }),
        },
      },
    },
    async (request) => verifyEvidence(request.body, await checkpointKeys(deps.db)),
  )
}
