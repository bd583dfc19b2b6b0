import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { createHash } from 'node:crypto'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { AUTH, KRN } from '../errors.js'
import { appendAudit } from '../audit/audit-log.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { isPlatform } from '../tenancy/schemas.js'
import type { Mailer } from '../mail/mailer.js'
import { invitationMail } from '../mail/templates.js'
import { INVITATION_TTL_DAYS } from '../identity/invitations.js'
import { PLATFORM_ORG } from '../db/database.js'
import { exportedAuditData, exportTenant } from './export.js'
import { restoreTenant, type RestoreDeps } from './restore.js'
import { ProtectedFields } from './protected-fields.js'
import { keyringFor } from './tenant-keys.js'
import type { KernelContext } from '../kernel-context.js'
import { checkDependencies, installableVersion } from '../plugins/lifecycle.js'

export interface ExportRouteDeps extends Omit<RestoreDeps, 'fields'> {
  orgTx: OrgTx
  fields: ProtectedFields
  /** Fingerprint of the key that seals installation secrets. */
  secretsSealedBy: string
  /** Seals the organisation's committed audit entries now, so the archive holds all of them. */
  sealAudit(orgId: string): Promise<void>
  /** After a restore committed: the plugin host forgets what it knew of the tenant's installations. */
  restored(tenantId: string): void
  /** Invitations of the restored members are mailed when it is configured. */
  mailer?: Pick<Mailer, 'configured' | 'send' | 'link'>
  /** Largest archive a restore accepts (bytes). */
  restoreLimitBytes?: number
}

/** The services export and restore use, from the kernel's. */
export function exportRouteDeps(k: KernelContext, orgTx: OrgTx): ExportRouteDeps {
  const keyring = keyringFor(k.config.secretKey)
  return {
    orgTx,
    fields: new ProtectedFields(keyring),
    secrets: k.secrets,
    secretsSealedBy: keyring.platformKeyId,
    sealAudit: async (org) => {
      await k.sealer.sealTenant(org)
    },
    installable: async (tx, tenantId, plugin, version) => {
      const v = await installableVersion(k, tx, plugin, version)
      await k.plugins.installPolicy?.(tx, tenantId, v)
      return v
    },
    checkDependencies: (tx, tenantId, version) => checkDependencies(k, tx, tenantId, version),
    ensureIndexes: async (tx, version) => {
      await k.plugins.data.ensureIndexes(tx, version.name, version.manifest.collections ?? {})
    },
    restored: (tenantId) => k.plugins.forgetTenant(tenantId),
    mailer: k.mailer,
  }
}

export const ARCHIVE_TYPE = 'application/x-ndjson'
const RESTORE_LIMIT = 256 * 1024 * 1024

/**
 * `GET /v1/governance/export` (a tenant admin: the tenant's archive) and
 * `POST /v1/tenants/:id/restore` (a platform admin: an archive into a new, empty tenant).
 */
export function registerExportRoutes(app: Api, deps: ExportRouteDeps): void {
  app.get(
    '/governance/export',
    {
      preHandler: requirePermission(P.governanceExport),
      schema: {
        tags: ['governance'],
        summary:
          "Export the tenant's data: roles, members, installations and settings (secrets sealed), every plugin record, the audit chain",
        description: `A tenant archive (${ARCHIVE_TYPE}; docs/governance.md, "Export and restore"). Its SHA-256 is in the x-trellis-archive-sha256 header and in the audit entry governance.tenant.exported.`,
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      if (p.orgKind !== 'tenant') throw AUTH.FORBIDDEN({ permission: P.governanceExport })
      await deps.sealAudit(p.orgId)
      const archive = await deps.orgTx(p.orgId, async (tx) => {
        const a = await exportTenant(tx, p.orgId, { fields: deps.fields, secretsSealedBy: deps.secretsSealedBy })
        await appendAudit(tx, p.orgId, {
          ...auditMeta(request),
          action: 'governance.tenant.exported',
          target: { kind: 'tenant', id: p.orgId },
          data: exportedAuditData(a),
        })
        return a
      })
      return reply
        .type(ARCHIVE_TYPE)
        .header('x-trellis-archive-sha256', archive.sha256)
        .header(
          'content-disposition',
          `attachment; filename="${archive.manifest.tenant.slug}-${archive.manifest.exportedAt.slice(0, 10)}.trellis.jsonl"`,
        )
        .send(archive.text)
    },
  )

  const RestoreReport = Type.Object({
    tenantId: Type.String(),
    source: Type.Object({
      tenantId: Type.String(),
      slug: Type.String(),
      exportedAt: Type.String(),
      auditHead: Type.Union([Type.Object({ seq: Type.String(), hash: Type.String() }), Type.Null()]),
    }),
    archiveSha256: Type.String(),
    restored: Type.Object({ roles: Type.Integer(), installations: Type.Integer(), records: Type.Integer() }),
    invited: Type.Array(
      Type.Object({
        email: Type.String(),
        role: Type.String(),
        acceptToken: Type.Optional(
          Type.String({ description: 'Only when the platform sends no e-mail: pass it to the person' }),
        ),
      }),
      { description: "The source's members, invited with their roles (each accepts, as any invited person)" },
    ),
    emailed: Type.Boolean(),
    sourceAudit: Type.Object({ entries: Type.Integer(), verified: Type.Boolean() }),
  })

  const limit = deps.restoreLimitBytes ?? RESTORE_LIMIT
  ;(app as unknown as FastifyInstance).register(async (instance) => {
    instance.addContentTypeParser(ARCHIVE_TYPE, { parseAs: 'string', bodyLimit: limit }, (_req, body, done) =>
      done(null, body),
    )
    ;(instance as unknown as Api).post(
      '/tenants/:id/restore',
      {
        preHandler: requirePermission(P.tenantsManage),
        bodyLimit: limit,
        schema: {
          tags: ['governance'],
          summary: 'Restore a tenant archive into a new, empty tenant (platform admins)',
          description: `The body is an archive from GET /v1/governance/export (${ARCHIVE_TYPE}). All of it is restored, or nothing.`,
          params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
          body: Type.String({ minLength: 1 }),
          response: { 200: RestoreReport },
        },
      },
      async (request) => {
        const p = principalOf(request)
        if (!isPlatform(p)) throw AUTH.FORBIDDEN({ permission: P.platformAdmin })
        const tenantId = request.params.id
        const text = request.body
        const sha256 = createHash('sha256').update(text).digest('hex')
        const meta = auditMeta(request)
        let tenantName = ''
        const report = await deps.orgTx(tenantId, async (tx) => {
          const [tenant] = await tx.sql<{ name: string }>('select name from tenants where id = ?::uuid', [tenantId])
          if (!tenant) throw KRN.NOT_FOUND({ what: 'tenant' })
          tenantName = tenant.name
          const report = await restoreTenant(tx, tenantId, text, sha256, deps, meta, p.userId)
          await tx.useOrg(PLATFORM_ORG)
          await appendAudit(tx, PLATFORM_ORG, {
            ...meta,
            action: 'governance.tenant.restored',
            target: { kind: 'tenant', id: tenantId },
            data: { source: report.source, archiveSha256: sha256, restored: report.restored },
          })
          return report
        })
        deps.restored(tenantId)
        const mailer = deps.mailer
        if (!mailer?.configured) return { ...report, emailed: false }
        // Mailed once committed; the caller never sees the tokens then, so accepting proves the address.
        for (const inv of report.invited)
          mailer.send(
            'invitation',
            invitationMail(inv.email, {
              orgName: tenantName,
              role: inv.role,
              link: mailer.link('/accept-invitation', { token: inv.acceptToken }),
              expiresAt: new Date(Date.now() + INVITATION_TTL_DAYS * 86_400_000),
            }),
          )
        return { ...report, invited: report.invited.map(({ email, role }) => ({ email, role })), emailed: true }
      },
    )
  })
}
