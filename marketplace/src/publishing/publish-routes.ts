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
import { TrellisError, verifyPackageSignature, validateManifest, type PluginManifest } from '@trellis/plugin-sdk'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { MKT } from '../errors.js'
import { PUBLISH_LIMITS } from './limits.js'
import { assertPublisher, publisherOf, isPlatformStaff, SOURCE } from './publisher.js'
import { SCOPE_PATTERN } from './publisher-routes.js'
import { sha256, unpackPackage, type Unpacked } from './unpack.js'
import { check, type CheckResult } from './checks.js'
import { kernelVersion } from './kernel-version.js'
import { refuseUngrantable } from './capability-checks.js'
import { KRN, PLATFORM_ORG, auditMeta, principalOf, type Api, type Principal } from '@trellis/core'
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

/** An upload as read from the multipart body. */
export interface Upload {
  tgz: Buffer
  signature: string
  changelog?: string
}

const MULTIPART_ERRORS: Record<string, () => Error> = {
  FST_REQ_FILE_TOO_LARGE: () => MKT.PACKAGE_TOO_LARGE({ limit: PUBLISH_LIMITS.uploadBytes }),
  FST_FILES_LIMIT: () => MKT.UPLOAD_INVALID({ reason: 'send exactly one file, in the field "package"' }),
  FST_PARTS_LIMIT: () =>
    MKT.UPLOAD_INVALID({ reason: 'too many multipart parts: send package, signature and changelog' }),
  FST_FIELDS_LIMIT: () => MKT.UPLOAD_INVALID({ reason: 'too many fields: send package, signature and changelog' }),
  FST_PROTO_VIOLATION: () => MKT.UPLOAD_INVALID({ reason: 'a field name is not allowed' }),
  FST_MP_PREMATURE_CLOSE: () =>
    MKT.UPLOAD_INVALID({ reason: 'the upload ended before the multipart body was complete' }),
}

/** Reads the multipart body under its limits; anything unexpected is MKT_ERR_UPLOAD_INVALID. */
async function readUpload(request: FastifyRequest): Promise<Upload> {
  if (!request.isMultipart())
    throw KRN.UNSUPPORTED_MEDIA_TYPE({ type: String(request.headers['content-type'] ?? 'none').split(';')[0]! })
  let tgz: Buffer | undefined
  let signature: string | undefined
  let changelog = ''
  const parts = request.parts()
  // The parser's own limits stop a part; this stops the body, whatever it holds (an endless
  // field, an endless preamble): past the cap the request is failed and never read further.
  let read = 0
  const raw = request.raw
  const count = (chunk: Buffer) => {
    read += chunk.length
    if (read <= UPLOAD_BODY_CAP) return
    raw.off('data', count)
    raw.unpipe()
    raw.pause()
    raw.emit('error', MKT.PACKAGE_TOO_LARGE({ limit: PUBLISH_LIMITS.uploadBytes }))
  }
  raw.on('data', count)
  try {
    for await (const part of parts) {
      if (part.type === 'file') {
        if (part.fieldname !== 'package') {
          part.file.resume()
          throw MKT.UPLOAD_INVALID({
            reason: `unexpected file field "${part.fieldname}"; the package goes in "package"`,
          })
        }
        tgz = await part.toBuffer()
        if (part.file.truncated) throw MKT.PACKAGE_TOO_LARGE({ limit: PUBLISH_LIMITS.uploadBytes })
      } else {
        if (part.valueTruncated || part.fieldnameTruncated)
          throw MKT.UPLOAD_INVALID({ reason: `field "${part.fieldname}" is too long` })
        const value = typeof part.value === 'string' ? part.value : String(part.value ?? '')
        if (part.fieldname === 'signature') signature = value
        else if (part.fieldname === 'changelog') changelog = value
        else throw MKT.UPLOAD_INVALID({ reason: `unexpected field "${part.fieldname}"` })
      }
    }
  } catch (err) {
    raw.off('data', count)
    const mapped = MULTIPART_ERRORS[(err as { code?: string }).code ?? '']
    if (mapped) throw mapped()
    if (err instanceof TrellisError) throw err
    // Reading the body only parses it: whatever else fails here (busboy's "Unexpected end of
    // form" for a body without its closing boundary, a malformed part header) is the body's fault.
    throw MKT.UPLOAD_INVALID({
      reason: `the multipart body is malformed: ${String((err as Error)?.message ?? err).slice(0, 200)}`,
    })
  }
  raw.off('data', count)
  return checkUpload({ tgz, signature, changelog })
}

/** The most a whole upload body may be: the package, the changelog field at 4 bytes a character, the signature and multipart framing. */
const UPLOAD_BODY_CAP =
  PUBLISH_LIMITS.uploadBytes + PUBLISH_LIMITS.changelogChars * 4 + PUBLISH_LIMITS.signatureChars + 64 * 1024

/** Refuses an upload by its declared length, before a byte of it is read. */
function refuseByLength(request: FastifyRequest): void {
  const declared = request.headers['content-length']
  if (declared !== undefined && Number(declared) > UPLOAD_BODY_CAP)
    throw MKT.PACKAGE_TOO_LARGE({ limit: PUBLISH_LIMITS.uploadBytes })
}

/** The upload's own limits, whoever read it. */
function checkUpload(u: { tgz?: Buffer; signature?: string; changelog?: string }): Upload {
  if (!u.tgz || u.tgz.length === 0)
    throw MKT.UPLOAD_INVALID({ reason: 'the file field "package" (the .tgz) is missing' })
  if (u.tgz.length > PUBLISH_LIMITS.uploadBytes) throw MKT.PACKAGE_TOO_LARGE({ limit: PUBLISH_LIMITS.uploadBytes })
  if (u.signature === undefined || u.signature.trim() === '')
    throw MKT.UPLOAD_INVALID({ reason: 'the field "signature" (the .sig text) is missing' })
  if (u.signature.length > PUBLISH_LIMITS.signatureChars)
    throw MKT.UPLOAD_INVALID({ reason: 'the signature is too long for an Ed25519 signature' })
  const changelog = u.changelog ?? ''
  if (changelog.includes('\0')) throw MKT.NUL_BYTE({ where: 'the changelog' })
  if (changelog.includes('\uFFFD')) throw MKT.NOT_UTF8({ where: 'the changelog' })
  if (changelog.length > PUBLISH_LIMITS.changelogChars)
    throw MKT.UPLOAD_INVALID({ reason: `the changelog exceeds ${PUBLISH_LIMITS.changelogChars} characters` })
  return { tgz: u.tgz, signature: u.signature.trim(), changelog }
}

interface KeyRow {
  id: string
  public_key: string
  fingerprint: string
  status: 'active' | 'revoked'
}

/** The publisher's key whose signature verifies over `tgz`: active ones first; a revoked match is refused by name. */
function verifySignature(tgz: Buffer, signature: string, keys: KeyRow[]): KeyRow {
  const verifies = (key: KeyRow) => {
    try {
      return verifyPackageSignature(tgz, signature, key.public_key)
    } catch {
      return false
    }
  }
  const active = keys.filter((k) => k.status === 'active').find(verifies)
  if (active) return active
  const revoked = keys.filter((k) => k.status === 'revoked').find(verifies)
  if (revoked) throw MKT.KEY_REVOKED({ fingerprint: revoked.fingerprint })
  throw MKT.SIGNATURE_INVALID()
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * The package's text files, decoded exactly: what is stored must be the bytes that were signed,
 * so a file that is not valid UTF-8 (decoding would replace bytes) or holds a NUL byte (which
 * PostgreSQL text cannot store) is refused.
 */
function packageText(pkg: Unpacked): { manifest: string; code: string; sourceMap: string } {
  const decode = (path: keyof Unpacked['files']) => {
    const bytes = pkg.files[path]
    if (bytes.includes(0)) throw MKT.NUL_BYTE({ where: path })
    try {
      return utf8.decode(bytes)
    } catch {
      throw MKT.NOT_UTF8({ where: path })
    }
  }
  return {
    manifest: decode('trellis.plugin.json'),
    code: decode('dist/plugin.js'),
    sourceMap: decode('dist/plugin.js.map'),
  }
}

function parseManifest(text: string): PluginManifest {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw MKT.MANIFEST_INVALID({ reason: `trellis.plugin.json is not JSON: ${(err as Error).message}` })
  }
  // An escaped NUL ("\u0000") in any string cannot be stored in jsonb.
  if (JSON.stringify(json).includes('\\u0000')) throw MKT.NUL_BYTE({ where: 'a string of trellis.plugin.json' })
  const v = validateManifest(json)
  if (!v.ok) {
    throw MKT.MANIFEST_INVALID({
      reason: `the manifest is invalid: ${v.errors
        .map((e) => `${e.pointer || '/'} ${e.message}`)
        .slice(0, 10)
        .join('; ')}`,
      problems: v.errors.map((e) => ({ pointer: e.pointer, message: e.message })),
    })
  }
  return v.manifest
}

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
