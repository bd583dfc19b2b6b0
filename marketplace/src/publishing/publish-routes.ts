/**
 * Publishing a version: `POST /v1/marketplace/plugins/:scope/:name/versions`, multipart with
 * the packed tarball (`package`), its detached signature (`signature`) and an optional
 * `changelog`. Everything that can be decided from the upload alone is decided here, before
 * anything is stored: limits, safe unpack, signature, manifest, name, version order, engines.
 * A refused upload leaves no row anywhere. An accepted one is stored (the artifact content-
 * addressed) as a version in status `checking`, and the checks worker takes it from there.
 */
import { Type, type Static } from '@sinclair/typebox'
import multipart from '@fastify/multipart'
import semver from 'semver'
import { TrellisError } from '@trellis/plugin-sdk'
import type { FastifyInstance } from 'fastify'
import { MKT } from '../errors.js'
import { PUBLISH_LIMITS } from './limits.js'
import { assertPublisher, publisherOf, isPlatformStaff, SOURCE } from './publisher.js'
import { SCOPE_PATTERN } from './publisher-routes.js'
import { sha256, unpackPackage } from './unpack.js'
import { checkUpload, readUpload, refuseByLength, type Upload } from './upload.js'
import { packageText, parseManifest, verifySignature, type KeyRow } from './package-contents.js'
import { check, type CheckResult } from './checks.js'
import { kernelVersion } from './kernel-version.js'
import { refuseUngrantable } from './capability-checks.js'
import { PLATFORM_ORG, auditMeta, principalOf, type Api, type Principal } from '@trellis/core'
import type { Services } from '../services.js'

const Uuid = Type.String({ format: 'uuid' })
type AuditMeta = ReturnType<typeof auditMeta>
const NameParams = {
  scope: Type.String({ pattern: SCOPE_PATTERN, maxLength: 64 }),
  name: Type.String({ pattern: '^[a-z0-9][a-z0-9-]*$', maxLength: 100 }),
}
export const CheckView = Type.Object({
  name: Type.String(),
  status: Type.Union([Type.Literal('passed'), Type.Literal('failed'), Type.Literal('warning')]),
  blocking: Type.Boolean(),
  details: Type.Record(Type.String(), Type.Unknown()),
  at: Type.String({ format: 'date-time' }),
})
const Published = Type.Object({
  id: Uuid,
  name: Type.String(),
  version: Type.String(),
  status: Type.String({
    description: '`checking`: the automated checks run next; then `in_review` or `failed_checks`.',
  }),
  artifactSha256: Type.String({ description: 'Hex sha256 of the uploaded tarball: the digest a review approves.' }),
  keyId: Uuid,
  fingerprint: Type.String(),
  checks: Type.Array(CheckView),
})
const ChecksView = Type.Object({
  id: Uuid,
  name: Type.String(),
  version: Type.String(),
  status: Type.String(),
  artifactSha256: Type.Union([Type.String(), Type.Null()]),
  checks: Type.Array(CheckView),
})

/** Only the scope's owner publishes under it. */
export async function assertOwnsScope(k: Services, p: Principal, scope: string): Promise<void> {
  const [owner] = await k.tx.read(p.orgId, (tx) =>
    tx.sql<{ partner_id: string }>('select partner_id from marketplace_scopes where scope = ?', [scope]),
  )
  if (owner?.partner_id !== p.orgId) throw MKT.SCOPE_NOT_OWNED({ scope })
}

/**
 * A refused upload stores nothing but is itself worth knowing about (a signature by a key that
 * is not yours, a tar-slip): it is audited in the publisher's chain.
 */
async function auditingRefusals<T>(
  k: Services,
  p: Principal,
  plugin: string,
  meta: AuditMeta,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof TrellisError && err.code.startsWith('MKT_ERR_')) {
      await k.tx
        .run(p.orgId, (tx) =>
          k.audit.append(tx, p.orgId, {
            ...meta,
            action: 'marketplace.version.refused',
            target: { kind: 'plugin', id: plugin },
            data: { plugin, code: err.code, reason: err.message.slice(0, 500) },
          }),
        )
        .catch((e: unknown) => k.logger.warn({ err: e }, 'auditing a refused publish failed'))
    }
    throw err
  }
}

/** What an accepted upload answers (HTTP 202). */
export type PublishedVersion = Static<typeof Published>

/**
 * Publishes an uploaded package for a publisher (`p`: a partner principal with
 * plugins.publish) — what the upload route does after reading the multipart body, and what
 * anything else that publishes (the demo's first-party plugins) must go through: every check,
 * the same audit and events, status `checking`. Throws MKT_ERR_* (audited) and stores nothing
 * when the package is refused.
 */
export async function publishVersion(
  k: Services,
  p: Principal,
  plugin: string,
  upload: Upload,
  meta: AuditMeta,
  published?: (versionId: string) => void,
): Promise<PublishedVersion> {
  assertPublisher(p)
  return auditingRefusals(k, p, plugin, meta, async () => {
    await assertOwnsScope(k, p, plugin.split('/')[0]!)
    return acceptUpload(k, p, plugin, upload, meta, published)
  })
}

async function acceptUpload(
  k: Services,
  p: Principal,
  plugin: string,
  given: Upload,
  meta: AuditMeta,
  published?: (versionId: string) => void,
): Promise<PublishedVersion> {
  const upload = checkUpload(given)
  const checks: CheckResult[] = []
  // The signature first: only a package its publisher signed is ever inflated.
  const keys = await k.tx.read(p.orgId, (tx) =>
    tx.sql<KeyRow>('select id, public_key, fingerprint, status from marketplace_keys where partner_id = ?::uuid', [
      p.orgId,
    ]),
  )
  const key = verifySignature(upload.tgz, upload.signature, keys)
  const artifactSha256 = sha256(upload.tgz)
  const pkg = await unpackPackage(upload.tgz)
  checks.push(
    check('package', 'passed', true, {
      packedBytes: pkg.packedBytes,
      unpackedBytes: pkg.unpackedBytes,
      files: Object.keys(pkg.files),
      sha256: artifactSha256,
    }),
  )
  checks.push(check('signature', 'passed', true, { keyId: key.id, fingerprint: key.fingerprint }))
  const text = packageText(pkg)
  const manifest = parseManifest(text.manifest)
  checks.push(check('manifest-schema', 'passed', true))
  if (manifest.name !== plugin) throw MKT.NAME_MISMATCH({ manifest: manifest.name, url: plugin })
  checks.push(check('name', 'passed', true, { name: manifest.name }))
  const kernel = kernelVersion()
  if (!semver.satisfies(kernel, manifest.engines.trellis, { includePrerelease: true }))
    throw MKT.ENGINE_UNSATISFIED({ range: manifest.engines.trellis, kernel })
  checks.push(check('engines', 'passed', true, { range: manifest.engines.trellis, kernel }))
  checks.push(refuseUngrantable(k, manifest))

  const { code, sourceMap } = text
  const row = await k.tx
    .run(PLATFORM_ORG, async (tx) => {
      // One publish of a plugin at a time decides what "greater than every version" means.
      await tx.sql('select pg_advisory_xact_lock(hashtext(?))', [`marketplace.publish:${plugin}`])
      // The key may have been revoked since the signature was checked: the revocation waits
      // for this transaction, or this one sees it.
      const [still] = await tx.sql<{ status: string }>(
        'select status from marketplace_keys where id = ?::uuid for share',
        [key.id],
      )
      if (still?.status !== 'active') throw MKT.KEY_REVOKED({ fingerprint: key.fingerprint })
      const existing = await k.versions.versionsOf(tx, plugin)
      const last = existing
        .map((r) => r.version)
        .filter((v) => semver.valid(v))
        .sort(semver.rcompare)[0]
      if (existing.some((r) => !semver.valid(r.version) || !semver.gt(manifest.version, r.version)))
        throw MKT.VERSION_NOT_MONOTONIC({ version: manifest.version, last: last ?? existing[0]!.version })
      checks.splice(
        4,
        0,
        check('version-monotonic', 'passed', true, { version: manifest.version, previous: last ?? null }),
      )
      await tx.sql(
        'insert into marketplace_artifacts (sha256, bytes, size) values (?, ?, ?) on conflict (sha256) do nothing',
        [artifactSha256, upload.tgz, upload.tgz.length],
      )
      const inserted = await k.versions.register(tx, {
        manifest,
        code,
        sourceMap,
        publisherId: p.orgId,
        createdBy: `${p.kind}:${p.id}`,
        status: 'checking',
        artifact: {
          sha256: artifactSha256,
          signature: upload.signature,
          keyId: key.id,
          changelog: upload.changelog ?? '',
        },
        checks,
      })
      const id = inserted.id
      const data = {
        versionId: id,
        name: manifest.name,
        version: manifest.version,
        publisherId: p.orgId,
        artifactSha256,
        keyId: key.id,
        fingerprint: key.fingerprint,
      }
      const target = { kind: 'plugin_version', id }
      const event = { type: 'marketplace.version.published', subject: `plugin_version/${id}`, data, source: SOURCE }
      await k.audit.append(tx, PLATFORM_ORG, { ...meta, action: 'marketplace.version.published', target, data })
      await k.events.emit(tx, event)
      await tx.useOrg(p.orgId)
      await k.audit.append(tx, p.orgId, { ...meta, action: 'marketplace.version.published', target, data })
      await k.events.emit(tx, event)
      await tx.useOrg(PLATFORM_ORG)
      return inserted
    })
    .catch((err: unknown) => {
      // Two uploads of the same version racing past the check: the loser is refused the same way.
      if ((err as { code?: string })?.code === '23505')
        throw MKT.VERSION_NOT_MONOTONIC({ version: manifest.version, last: manifest.version })
      throw err
    })
  published?.(row.id)
  return {
    id: row.id,
    name: manifest.name,
    version: manifest.version,
    status: row.status,
    artifactSha256,
    keyId: key.id,
    fingerprint: key.fingerprint,
    checks,
  }
}

export interface PublishHooks {
  /** Called once a version is stored: wakes the checks worker of this process. */
  published?: (versionId: string) => void
}

export function registerPublishRoutes(app: Api, k: Services, hooks: PublishHooks = {}): void {
  // Multipart is parsed only here: no other route of the API accepts it.
  void app.register(async (scoped: FastifyInstance) => {
    await scoped.register(multipart, {
      limits: {
        fileSize: PUBLISH_LIMITS.uploadBytes,
        files: 1,
        fields: 3,
        parts: 4,
        fieldSize: PUBLISH_LIMITS.changelogChars * 4,
        headerPairs: 50,
      },
      throwFileSizeLimit: true,
    })
    // A request answered before its body was read in full (refused by its caller, its length,
    // a part over its limit) loses its connection once the answer is out: the rest of the body
    // is never read, however much more the client sends.
    scoped.addHook('onResponse', async (request) => {
      if (!request.raw.complete) request.raw.socket?.destroy()
    })
    const api = scoped as unknown as Api
    api.post(
      '/marketplace/plugins/:scope/:name/versions',
      {
        // The kernel's Idempotency-Key support hashes JSON bodies, not uploads: a retried upload
        // is instead refused as MKT_ERR_VERSION_NOT_MONOTONIC once the first one was stored.
        preHandler: async (request) => {
          delete request.headers['idempotency-key']
        },
        schema: {
          tags: ['marketplace'],
          summary:
            'Publish a version: multipart with `package` (the .tgz from `trellis-plugin pack`), `signature` (its .sig text) and an optional `changelog`',
          description:
            'Refused with a stable MKT_ERR_* code, storing nothing, when the upload breaks a limit, does not unpack safely, is not signed by an active key of the publisher, has an invalid manifest, names another plugin, is not a greater version than every one published, or needs another kernel. Accepted versions start in `checking`.',
          consumes: ['multipart/form-data'],
          params: Type.Object(NameParams),
          response: { 202: Published },
        },
      },
      async (request, reply) => {
        const p = publisherOf(request)
        const plugin = `${request.params.scope}/${request.params.name}`
        const meta = auditMeta(request)
        const result = await auditingRefusals(k, p, plugin, meta, async () => {
          // Refuse before reading the body when the scope is not the caller's.
          await assertOwnsScope(k, p, request.params.scope)
          refuseByLength(request)
          return acceptUpload(k, p, plugin, await readUpload(request), meta, hooks.published)
        })
        reply.code(202)
        return result
      },
    )
  })

  app.get(
    '/marketplace/plugins/:scope/:name/versions/:version/checks',
    {
      schema: {
        tags: ['marketplace'],
        summary: "A version's automated check results, for its publisher and platform admins",
        params: Type.Object({ ...NameParams, version: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: { 200: ChecksView },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const plugin = `${request.params.scope}/${request.params.name}`
      const row = (await k.tx.read(p.orgId, (tx) => k.versions.versionsOf(tx, plugin))).find(
        (v) => v.version === request.params.version,
      )
      const publisher =
        row && p.orgKind === 'partner' && row.publisher_id === p.orgId && p.permissions.has('plugins.publish')
      if (!row || !(publisher || isPlatformStaff(p)))
        throw MKT.VERSION_NOT_FOUND({ name: plugin, version: request.params.version })
      return {
        id: row.id,
        name: row.name,
        version: row.version,
        status: row.status,
        artifactSha256: row.artifact_sha256,
        checks: row.checks as CheckResult[],
      }
    },
  )
}
