/**
 * First-party plugins (the `plugins/` folder) reach a tenant the way every partner's plugin
 * does — packed, signed, published, checked, approved, installed with consent — never through a
 * side door. `trellis start --demo` uses this for the demo tenant.
 */
import { generateKeyPairSync, sign } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { v7 as uuidv7 } from 'uuid'
import { buildPlugin, keyFingerprint, packPlugin, type PluginManifest } from '@trellis/plugin-sdk'
import type { Publishing } from './publishing/index.js'
import { decide } from './governance/review-routes.js'
import { PLATFORM_ORG, type Principal } from '@trellis/core'
import type { Services } from './services.js'

const SYSTEM = { actor: { kind: 'system' as const, id: 'first-party' } }
const SYSTEM_USER = '00000000-0000-0000-0000-000000000000'

export interface FirstPartyResult {
  plugin: string
  version: string
  status: string
  installed: boolean
}

/** The first-party publisher: a partner owning the reserved `@trellis` scope. */
async function publisher(k: Services): Promise<string> {
  const [found] = await k.tx.read(PLATFORM_ORG, (tx) =>
    tx.sql<{ partner_id: string }>(`select partner_id from marketplace_scopes where scope = '@trellis'`),
  )
  if (found) return found.partner_id
  return k.tx.run(PLATFORM_ORG, async (tx) => {
    const { id } = await k.organisations.ensurePartner(tx, { name: 'Trellis', slug: 'trellis-first-party' }, SYSTEM)
    await tx.sql(`insert into marketplace_scopes (scope, partner_id) values ('@trellis', ?::uuid)`, [id])
    await k.audit.append(tx, PLATFORM_ORG, {
      ...SYSTEM,
      action: 'marketplace.scope.assigned',
      target: { kind: 'partner', id },
      data: { scope: '@trellis' },
    })
    return id
  })
}

/**
 * Publishes, approves and installs the first-party plugins in `dirs` (dependencies first) for
 * `tenantId`. A version already approved is not published again; an installed plugin is left
 * as it is. Each package is signed by a key registered for this run.
 */
export async function seedFirstPartyPlugins(
  k: Services,
  publishing: Publishing,
  opts: {
    tenantId: string
    dirs: string[]
    settings?: Record<string, Record<string, unknown>>
    log?: (line: string) => void
  },
): Promise<FirstPartyResult[]> {
  const log = opts.log ?? (() => {})
  const partnerId = await publisher(k)
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
  await k.tx.run(partnerId, (tx) =>
    tx.sql(
      `insert into marketplace_keys (id, partner_id, name, public_key, fingerprint) values (?::uuid, ?::uuid, 'first-party', ?, ?)`,
      [uuidv7(), partnerId, pem, keyFingerprint(publicKey)],
    ),
  )
  const principal: Principal = {
    kind: 'api_key',
    id: 'first-party',
    userId: SYSTEM_USER,
    orgId: partnerId,
    orgKind: 'partner',
    permissions: new Set(['plugins.publish']),
  }
  const reviewer: Principal = {
    kind: 'api_key',
    id: 'first-party-review',
    userId: SYSTEM_USER,
    orgId: PLATFORM_ORG,
    orgKind: 'platform',
    permissions: new Set(['marketplace.review']),
  }
  const out: FirstPartyResult[] = []
  const stage = await mkdtemp(join(tmpdir(), 'trellis-first-party-'))
  try {
    for (const dir of opts.dirs) {
      const raw = await readFile(join(dir, 'trellis.plugin.json'), 'utf8')
      const manifest = JSON.parse(raw) as PluginManifest
      let v: { id: string; status: string } | undefined = (
        await k.tx.read(PLATFORM_ORG, (tx) => k.versions.versionsOf(tx, manifest.name))
      ).find((r) => r.version === manifest.version)
      if (!v) {
        const built = await buildPlugin({ dir, write: false })
        const packed = await packPlugin({
          name: manifest.name,
          version: manifest.version,
          manifest: raw,
          bundle: built.code,
          sourceMap: built.sourceMap,
          outDir: stage,
          privateKey,
        })
        const tgz = await readFile(packed.tarballPath)
        const signature = sign(null, tgz, privateKey).toString('base64')
        const published = await publishing.publish(
          principal,
          manifest.name,
          { tgz, signature, changelog: 'First-party release' },
          SYSTEM,
        )
        v = { id: published.id, status: published.status }
        log(`published ${manifest.name}@${manifest.version}`)
      }
      // The automated checks run in the background; wait for their verdict.
      for (let i = 0; v?.status === 'checking' && i < 600; i++) {
        await new Promise((r) => setTimeout(r, 100))
        v = await k.tx.read(PLATFORM_ORG, (tx) => k.versions.get(tx, v!.id))
      }
      if (v!.status === 'in_review') {
        await decide(k, reviewer, v!.id, 'approve', 'first-party plugin: automated checks passed', SYSTEM)
        v = { id: v!.id, status: 'approved' }
        log(`approved ${manifest.name}@${manifest.version}`)
      }
      let installed = false
      if (v!.status === 'approved') {
        if (!(await k.plugins.installedPlugins(opts.tenantId)).has(manifest.name)) {
          await k.plugins.install(
            opts.tenantId,
            {
              plugin: manifest.name,
              version: manifest.version,
              capabilities: manifest.capabilities,
              settings: opts.settings?.[manifest.name] ?? {},
              installedBy: 'system:first-party',
            },
            SYSTEM,
          )
          log(`installed ${manifest.name}@${manifest.version}`)
        }
        installed = true
      }
      out.push({ plugin: manifest.name, version: manifest.version, status: v!.status, installed })
    }
  } finally {
    await rm(stage, { recursive: true, force: true })
  }
  return out
}
