/**
 * `trellis-plugin publish`: uploads a signed package to a Trellis marketplace
 * (`POST /v1/marketplace/plugins/:scope/:name/versions`, multipart: `package`, `signature`,
 * `changelog`) with a partner API key. The marketplace runs its checks and a platform admin
 * reviews the version before any tenant can install it. Node-only.
 */
import { gunzipSync } from 'node:zlib'
import { defineErrors } from './errors.js'
import { SIZE_LIMITS } from './manifest.js'
import { SDK } from './sdk-errors.js'

/** Errors of `trellis-plugin publish` that do not come from the marketplace itself. */
export const PUBLISH = defineErrors('SDK', {
  PUBLISH_UNREACHABLE: {
    status: 503,
    title: 'Marketplace unreachable',
    message: (d: { url: string; reason: string }) => `cannot reach ${d.url}: ${d.reason}`,
  },
  PUBLISH_FAILED: {
    status: 502,
    title: 'Marketplace error',
    message: (d: { status: number; reason: string }) => `the marketplace answered ${d.status}: ${d.reason}`,
  },
})

/** What to publish, and where. */
export interface PublishOptions {
  /** Base URL of the Trellis API (`https://trellis.example.com`); `/v1/...` is appended. */
  url: string
  /** A partner API key (`trk_…`) holding `plugins.publish`. */
  apiKey: string
  /** The packed `.tgz`, byte for byte as signed. */
  tarball: Buffer
  /** The detached signature (`.sig` text, base64). */
  signature: string
  /** Release notes shown to reviewers. */
  changelog?: string
  /** File name sent with the upload. */
  fileName?: string
  /** Gives up after this long (default 120 s). */
  timeoutMs?: number
  /** For tests. */
  fetch?: typeof fetch
}

/** The version the marketplace accepted (HTTP 202). */
export interface PublishedVersion {
  id: string
  name: string
  version: string
  /** `checking`: the automated checks run next, then the version waits for review. */
  status: string
  artifactSha256: string
  fingerprint: string
  checks: Array<{ name: string; status: string; blocking: boolean; details: Record<string, unknown> }>
}

/** How a publish ended. `kind`: `auth` (401/403), `refused` (another 4xx with a code), `network`, `server`. */
export type PublishOutcome =
  | { ok: true; status: number; version: PublishedVersion }
  | { ok: false; kind: 'auth' | 'refused' | 'network' | 'server'; status: number | null; code: string; message: string }

/** Reads `trellis.plugin.json` out of a packed package (to learn the name it is published under). */
export async function readPackageManifest(tarball: Buffer): Promise<{ name: string; version: string }> {
  let tar: Buffer
  try {
    tar = gunzipSync(tarball, {
      maxOutputLength: SIZE_LIMITS.manifestBytes + SIZE_LIMITS.bundleBytes + SIZE_LIMITS.sourceMapBytes + 64 * 1024,
    })
  } catch (err) {
    throw SDK.USAGE({ reason: `the package is not a readable .tgz: ${(err as Error).message}` })
  }
  const { Parser } = await import('tar')
  const text = await new Promise<string | undefined>((resolve, reject) => {
    let found: string | undefined
    const parser = new Parser({ strict: true })
    parser.on('entry', (entry) => {
      if (entry.path !== 'trellis.plugin.json' || entry.type !== 'File') return entry.resume()
      const chunks: Buffer[] = []
      entry.on('data', (c: Buffer) => chunks.push(c))
      entry.on('end', () => (found = Buffer.concat(chunks).toString('utf8')))
    })
    parser.on('error', reject)
    parser.on('end', () => resolve(found))
    parser.end(tar)
  }).catch((err: Error) => {
    throw SDK.USAGE({ reason: `the package is not a readable .tgz: ${err.message}` })
  })
  if (text === undefined) throw SDK.USAGE({ reason: 'the package holds no trellis.plugin.json' })
  let m: { name?: unknown; version?: unknown }
  try {
    m = JSON.parse(text)
  } catch {
    throw SDK.MANIFEST_INVALID({ issues: [{ pointer: '', message: 'trellis.plugin.json in the package is not JSON' }] })
  }
  if (
    typeof m.name !== 'string' ||
    !/^@[a-z0-9][a-z0-9-]*\/[a-z0-9][a-z0-9-]*$/.test(m.name) ||
    typeof m.version !== 'string'
  ) {
    throw SDK.MANIFEST_INVALID({
      issues: [{ pointer: '/name', message: 'the package manifest has no @scope/name and version' }],
    })
  }
  return { name: m.name, version: m.version }
}

/** Uploads a package. Never throws for an answer from the server or a network failure: see {@link PublishOutcome}. */
export async function publishPackage(name: string, opts: PublishOptions): Promise<PublishOutcome> {
  const [scope, short] = name.split('/') as [string, string]
  let base: URL
  try {
    base = new URL(opts.url)
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error('not http(s)')
  } catch {
    throw SDK.USAGE({ reason: `--url must be an http(s) URL, not "${opts.url}"` })
  }
  const endpoint = new URL(
    `${base.pathname.replace(/\/+$/, '')}/v1/marketplace/plugins/${encodeURIComponent(scope)}/${encodeURIComponent(short)}/versions`,
    base,
  )
  const form = new FormData()
  form.append('signature', opts.signature.trim())
  if (opts.changelog) form.append('changelog', opts.changelog)
  form.append('package', new Blob([opts.tarball], { type: 'application/gzip' }), opts.fileName ?? 'package.tgz')
  let res: Response
  try {
    res = await (opts.fetch ?? fetch)(endpoint, {
      method: 'POST',
      headers: { authorization: `Bearer ${opts.apiKey}`, accept: 'application/json, application/problem+json' },
      body: form,
      signal: AbortSignal.timeout(opts.timeoutMs ?? 120_000),
    })
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause
    const e = PUBLISH.PUBLISH_UNREACHABLE({
      url: base.origin,
      reason: cause?.code ?? cause?.message ?? (err as Error).message,
    })
    return { ok: false, kind: 'network', status: null, code: e.code, message: e.message }
  }
  const text = await res.text().catch(() => '')
  let body: Record<string, unknown> = {}
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {}
  } catch {
    /* not JSON */
  }
  if (res.status === 202 || res.status === 201)
    return { ok: true, status: res.status, version: body as unknown as PublishedVersion }
  const code = typeof body.code === 'string' ? body.code : undefined
  const detail = typeof body.detail === 'string' ? body.detail : text.slice(0, 300) || res.statusText
  if (res.status === 401 || res.status === 403)
    return { ok: false, kind: 'auth', status: res.status, code: code ?? PUBLISH.PUBLISH_FAILED.code, message: detail }
  if (res.status >= 400 && res.status < 500 && code)
    return { ok: false, kind: 'refused', status: res.status, code, message: detail }
  const e = PUBLISH.PUBLISH_FAILED({ status: res.status, reason: detail })
  return { ok: false, kind: 'server', status: res.status, code: code ?? e.code, message: code ? detail : e.message }
}
