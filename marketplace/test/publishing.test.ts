// Publishing: publishers (scopes, keys), the upload and its synchronous checks, the checks
// worker. Every bad upload gets its stable code and leaves no row behind.
import t from 'tap'
import type { Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { createTenantWithAdmin, DB_KINDS, startTestKernel, type DbKind, type TestKernel } from '../../core/test/helpers/test-kernel.js'
import { checksWorkerOf } from '../src/publishing/index.js'
import { craftedPackage, manifestOf, multipart, newSigner, paxRecord, properEntries, realPackage, signBytes, type Package, type Signer } from './fixtures/packages.js'

interface Partner {
  id: string
  token: string
}

async function createPartner(k: TestKernel, slug: string): Promise<Partner> {
  const email = `admin@${slug}.test`
  const password = `password-of-${slug}`
  const r = await k.req('POST', '/v1/partners', { token: k.adminToken, body: { name: slug, slug, admin: { email, name: `${slug} admin`, password } } })
  if (r.status !== 201) throw new Error(`partner ${slug}: ${r.status} ${JSON.stringify(r.body)}`)
  const s = await k.login(email, password)
  return { id: r.body.id, token: s.token }
}

async function publish(k: TestKernel, token: string, plugin: string, pkg: Package, extra: { changelog?: string; headers?: Record<string, string> } = {}) {
  const body = multipart([
    { name: 'signature', value: pkg.signature },
    ...(extra.changelog ? [{ name: 'changelog', value: extra.changelog }] : []),
    { name: 'package', filename: 'pkg.tgz', content: pkg.tgz },
  ])
  const res = await k.kernel.app.inject({ method: 'POST', url: `/v1/marketplace/plugins/${plugin}/versions`, headers: { authorization: `Bearer ${token}`, 'content-type': body.contentType, ...(extra.headers ?? {}) }, payload: body.payload })
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined }
}

async function counts(k: TestKernel) {
  const [v] = await k.ownerSql<{ n: number }>('select count(*)::int as n from plugin_versions')
  const [a] = await k.ownerSql<{ n: number }>('select count(*)::int as n from marketplace_artifacts')
  return { versions: v!.n, artifacts: a!.n }
}

/** Runs the checks worker until the version has left `checking`. */
async function checked(k: TestKernel, id: string) {
  const worker = checksWorkerOf(k.kernel.ctx)!
  for (let i = 0; i < 200; i++) {
    await worker.drain()
    const [row] = await k.ownerSql('select status, checks from plugin_versions where id = ?', [id])
    if (row.status !== 'checking') return row as { status: string; checks: Array<{ name: string; status: string; blocking: boolean; details: any }> }
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error('checks did not finish')
}

for (const kind of DB_KINDS) t.test(`publishing (${kind})`, (t) => suite(t, kind))

async function suite(t: Test, kind: DbKind) {
  const k = await startTestKernel(t, kind)
  const acme = await createPartner(k, 'acme-partner')
  const beta = await createPartner(k, 'beta-partner')
  const shop = await createTenantWithAdmin(k, 'shop')
  const acmeKey: Signer = await newSigner()
  const betaKey: Signer = await newSigner()
  const oldKey: Signer = await newSigner()
  const unregistered: Signer = await newSigner()

  await t.test('scopes: a partner claims one; taken, reserved and tenant callers are refused', async (t) => {
    const r = await k.req('POST', '/v1/marketplace/scopes', { token: acme.token, body: { scope: '@acme' } })
    t.equal(r.status, 201)
    t.same(r.body, { scope: '@acme', partnerId: acme.id, createdAt: r.body.createdAt })
    t.equal((await k.req('POST', '/v1/marketplace/scopes', { token: beta.token, body: { scope: '@acme' } })).body.code, 'MKT_ERR_SCOPE_TAKEN')
    t.equal((await k.req('POST', '/v1/marketplace/scopes', { token: beta.token, body: { scope: '@trellis' } })).body.code, 'MKT_ERR_SCOPE_RESERVED')
    t.equal((await k.req('POST', '/v1/marketplace/scopes', { token: shop.token, body: { scope: '@shop' } })).body.code, 'AUTH_ERR_FORBIDDEN')
    t.equal((await k.req('POST', '/v1/marketplace/scopes', { token: beta.token, body: { scope: 'beta' } })).body.code, 'KRN_ERR_VALIDATION_FAILED')
    t.equal((await k.req('POST', '/v1/marketplace/scopes', { token: beta.token, body: { scope: '@beta' } })).status, 201)
    const a = await k.req('POST', '/v1/marketplace/scopes', { token: k.adminToken, body: { scope: '@trellis', partnerId: beta.id } })
    t.equal(a.status, 201, 'a platform admin assigns a reserved scope')
    t.same((await k.req('GET', '/v1/marketplace/scopes', { token: beta.token })).body.items.map((s: any) => s.scope), ['@beta', '@trellis'])
    t.same((await k.req('GET', '/v1/marketplace/scopes', { token: acme.token })).body.items.map((s: any) => s.scope), ['@acme'])
    t.equal((await k.req('GET', '/v1/marketplace/scopes', { token: k.adminToken })).body.items.length, 3)
    const audit = await k.ownerSql(`select tenant_id from audit_log where action = 'marketplace.scope.claimed' and target_id = '@acme'`)
    t.same(audit.map((a) => a.tenant_id), [acme.id])
  })

  await t.test('keys: register (Ed25519 SPKI only), list, revoke; audited, with events', async (t) => {
    const r = await k.req('POST', '/v1/marketplace/keys', { token: acme.token, body: { name: 'ci', publicKey: acmeKey.publicKeyPem } })
    t.equal(r.status, 201)
    t.equal(r.body.fingerprint, acmeKey.fingerprint, 'the fingerprint is the one trellis-plugin keys generate prints')
    t.equal(r.body.status, 'active')
    t.equal((await k.req('POST', '/v1/marketplace/keys', { token: beta.token, body: { name: 'dup', publicKey: acmeKey.publicKeyPem } })).body.code, 'MKT_ERR_KEY_EXISTS')
    const { generateKeyPairSync } = await import('node:crypto')
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'pem', type: 'spki' }).toString()
    t.equal((await k.req('POST', '/v1/marketplace/keys', { token: acme.token, body: { name: 'rsa', publicKey: rsa } })).body.code, 'MKT_ERR_KEY_INVALID')
    const priv = acmeKey.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
    t.equal((await k.req('POST', '/v1/marketplace/keys', { token: acme.token, body: { name: 'oops', publicKey: priv } })).body.code, 'MKT_ERR_KEY_INVALID', 'a private key is never accepted')
    t.equal((await k.req('POST', '/v1/marketplace/keys', { token: acme.token, body: { name: 'junk', publicKey: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' } })).body.code, 'MKT_ERR_KEY_INVALID')
    t.equal((await k.req('POST', '/v1/marketplace/keys', { token: shop.token, body: { name: 'x', publicKey: acmeKey.publicKeyPem } })).body.code, 'AUTH_ERR_FORBIDDEN')
    t.equal((await k.req('POST', '/v1/marketplace/keys', { token: beta.token, body: { name: 'beta', publicKey: betaKey.publicKeyPem } })).status, 201)
    const old = await k.req('POST', '/v1/marketplace/keys', { token: acme.token, body: { name: 'old', publicKey: oldKey.publicKeyPem } })
    t.equal((await k.req('POST', `/v1/marketplace/keys/${old.body.id}/revoke`, { token: beta.token })).body.code, 'MKT_ERR_KEY_NOT_FOUND', "another partner's key cannot be revoked")
    const rev = await k.req('POST', `/v1/marketplace/keys/${old.body.id}/revoke`, { token: acme.token })
    t.equal(rev.status, 200)
    t.equal(rev.body.status, 'revoked')
    t.ok(rev.body.revokedAt)
    const list = await k.req('GET', '/v1/marketplace/keys', { token: acme.token })
    t.same(list.body.items.map((x: any) => [x.name, x.status]), [['ci', 'active'], ['old', 'revoked']])
    const events = await k.ownerSql(`select tenant_id, type from events where type like 'marketplace.key.%' order by id`)
    t.same(events.map((e) => [e.tenant_id, e.type]), [[acme.id, 'marketplace.key.registered'], [beta.id, 'marketplace.key.registered'], [acme.id, 'marketplace.key.registered'], [acme.id, 'marketplace.key.revoked']])
    const audit = await k.ownerSql(`select tenant_id, action from audit_log where action like 'marketplace.key.%'`)
    t.equal(audit.length, 4)
  })

  let apiKey = ''
  await t.test('bad uploads: each refused with its code, nothing stored', async (t) => {
    const keyRes = await k.req('POST', '/v1/api-keys', { token: acme.token, body: { name: 'publish', permissions: ['plugins.publish'] } })
    apiKey = keyRes.body.key
    const weakKey = (await k.req('POST', '/v1/api-keys', { token: acme.token, body: { name: 'read', permissions: ['tenants.read'] } })).body.key
    const before = await counts(k)
    const m = await manifestOf('@acme/notes', '1.0.0')
    const good = await realPackage(acmeKey, m)
    const proper = await properEntries(m)
    const cases: Array<[string, () => Promise<{ status: number; body: any }>, number, string]> = [
      ['tar-slip (../)', async () => publish(k, apiKey, '@acme/notes', craftedPackage(acmeKey, [...proper, { path: '../../etc/cron.d/evil', body: 'x' }])), 422, 'MKT_ERR_UNSAFE_ENTRY'],
      ['tar-slip inside a path', async () => publish(k, apiKey, '@acme/notes', craftedPackage(acmeKey, [...proper, { path: 'dist/../../evil.js', body: 'x' }])), 422, 'MKT_ERR_UNSAFE_ENTRY'],
      ['tar-slip through a pax header', async () => publish(k, apiKey, '@acme/notes', craftedPackage(acmeKey, [...proper, { path: 'PaxHeader/x', type: 'x', body: paxRecord('path', '../../evil.js') }, { path: 'harmless.js', body: 'x' }])), 422, 'MKT_ERR_UNSAFE_ENTRY'],
      ['tar-slip through a GNU long name', async () => publish(k, apiKey, '@acme/notes', craftedPackage(acmeKey, [...proper, { path: '././@LongLink', type: 'L', body: '../'.repeat(40) + 'evil.js\0' }, { path: 'harmless.js', body: 'x' }])), 422, 'MKT_ERR_UNSAFE_ENTRY'],
      ['symlink through a pax linkpath', async () => publish(k, apiKey, '@acme/notes', craftedPackage(acmeKey, [{ path: 'PaxHeader/y', type: 'x', body: paxRecord('linkpath', '/etc/shadow') }, { path: 'dist/plugin.js', type: '2', linkpath: 'plugin.js.map' }, ...proper])), 422, 'MKT_ERR_UNSAFE_ENTRY'],
      ['absolute path', async () => publish(k, apiKey, '@acme/notes', craftedPackage(acmeKey, [...proper, { path: '/etc/passwd', body: 'x' }])), 422, 'MKT_ERR_UNSAFE_ENTRY'],
      ['symlink', async () => publish(k, apiKey, '@acme/notes', craftedPackage(acmeKey, [{ path: 'dist/plugin.js', type: '2', linkpath: '/etc/passwd' }, ...proper])), 422, 'MKT_ERR_UNSAFE_ENTRY'],
      ['hardlink', async () => publish(k, apiKey, '@acme/notes', craftedPackage(acmeKey, [...proper, { path: 'dist/extra.js', type: '1', linkpath: 'trellis.plugin.json' }])), 422, 'MKT_ERR_UNSAFE_ENTRY'],
      ['device file', async () => publish(k, apiKey, '@acme/notes', craftedPackage(acmeKey, [...proper, { path: 'dist/tty', type: '3' }])), 422, 'MKT_ERR_UNSAFE_ENTRY'],
      ['extra file', async () => publish(k, apiKey, '@acme/notes', craftedPackage(acmeKey, [...proper, { path: 'dist/extra.js', body: 'x' }])), 422, 'MKT_ERR_PACKAGE_CONTENTS'],
      ['directory entry', async () => publish(k, apiKey, '@acme/notes', craftedPackage(acmeKey, [{ path: 'dist/', type: '5' }, ...proper])), 422, 'MKT_ERR_PACKAGE_CONTENTS'],
      ['missing file', async () => publish(k, apiKey, '@acme/notes', craftedPackage(acmeKey, proper.filter((e) => e.path !== 'dist/plugin.js.map'))), 422, 'MKT_ERR_PACKAGE_CONTENTS'],
      ['duplicate file', async () => publish(k, apiKey, '@acme/notes', craftedPackage(acmeKey, [...proper, proper[1]!])), 422, 'MKT_ERR_PACKAGE_CONTENTS'],
      ['too many entries', async () => publish(k, apiKey, '@acme/notes', craftedPackage(acmeKey, Array.from({ length: 40 }, (_, i) => ({ path: `f${i}`, body: 'x' })))), 422, 'MKT_ERR_TOO_MANY_FILES'],
      [
        'SHA256SUMS not matching',
        async () => publish(k, apiKey, '@acme/notes', craftedPackage(acmeKey, proper.map((e) => (e.path === 'dist/plugin.js' ? { ...e, body: String(e.body) + '\n// changed after summing' } : e)))),
        422,
        'MKT_ERR_CHECKSUMS_MISMATCH',
      ],
      [
        'gzip bomb (unpacks past the cap)',
        async () => publish(k, apiKey, '@acme/notes', craftedPackage(acmeKey, [...proper.slice(0, 2), { path: 'dist/plugin.js.map', body: Buffer.alloc(40 * 1024 * 1024) }, proper[3]!])),
        413,
        'MKT_ERR_UNPACKED_TOO_LARGE',
      ],
      [
        'gzip bomb (ratio)',
        async () => publish(k, apiKey, '@acme/notes', craftedPackage(acmeKey, [...proper.slice(0, 2), { path: 'dist/plugin.js.map', body: Buffer.alloc(8 * 1024 * 1024) }, proper[3]!])),
        413,
        'MKT_ERR_COMPRESSION_RATIO',
      ],
      [
        'oversized upload',
        async () => {
          const big = randomBytes(21 * 1024 * 1024)
          return publish(k, apiKey, '@acme/notes', { tgz: big, signature: signBytes(acmeKey, big) })
        },
        413,
        'MKT_ERR_PACKAGE_TOO_LARGE',
      ],
      [
        'corrupt gzip',
        async () => {
          const bad = Buffer.concat([gzipSync(Buffer.alloc(4096, 1)).subarray(0, 30), randomBytes(200)])
          return publish(k, apiKey, '@acme/notes', { tgz: bad, signature: signBytes(acmeKey, bad) })
        },
        422,
        'MKT_ERR_PACKAGE_CORRUPT',
      ],
      [
        'not gzip at all',
        async () => {
          const bad = Buffer.from('just some text, not a package')
          return publish(k, apiKey, '@acme/notes', { tgz: bad, signature: signBytes(acmeKey, bad) })
        },
        422,
        'MKT_ERR_PACKAGE_CORRUPT',
      ],
      ['invalid manifest (schema)', async () => publish(k, apiKey, '@acme/notes', await realPackage(acmeKey, await manifestOf('@acme/notes', '1.0.0', (x) => delete x.engines))), 422, 'MKT_ERR_MANIFEST_INVALID'],
      ['invalid manifest (not JSON)', async () => publish(k, apiKey, '@acme/notes', await realPackage(acmeKey, m, { manifestText: '{"name": "@acme/notes",' })), 422, 'MKT_ERR_MANIFEST_INVALID'],
      ['manifest names another plugin', async () => publish(k, apiKey, '@acme/notes', await realPackage(acmeKey, await manifestOf('@acme/other', '1.0.0'))), 422, 'MKT_ERR_NAME_MISMATCH'],
      ['manifest names a plugin in another scope', async () => publish(k, apiKey, '@acme/notes', await realPackage(acmeKey, await manifestOf('@beta/notes', '1.0.0'))), 422, 'MKT_ERR_NAME_MISMATCH'],
      ['engines not satisfied', async () => publish(k, apiKey, '@acme/notes', await realPackage(acmeKey, await manifestOf('@acme/notes', '1.0.0', (x) => (x.engines.trellis = '^9.0.0')))), 422, 'MKT_ERR_ENGINE_UNSATISFIED'],
      ["signed by another publisher's key", async () => publish(k, apiKey, '@acme/notes', await realPackage(betaKey, m)), 422, 'MKT_ERR_SIGNATURE_INVALID'],
      ['signed by an unregistered key', async () => publish(k, apiKey, '@acme/notes', await realPackage(unregistered, m)), 422, 'MKT_ERR_SIGNATURE_INVALID'],
      ['signature over different bytes', async () => publish(k, apiKey, '@acme/notes', { tgz: good.tgz, signature: (await realPackage(acmeKey, await manifestOf('@acme/notes', '1.0.1'))).signature }), 422, 'MKT_ERR_SIGNATURE_INVALID'],
      ['bytes changed after signing', async () => publish(k, apiKey, '@acme/notes', { tgz: Buffer.concat([good.tgz, Buffer.from([0])]), signature: good.signature }), 422, 'MKT_ERR_SIGNATURE_INVALID'],
      ['signature not base64 of 64 bytes', async () => publish(k, apiKey, '@acme/notes', { tgz: good.tgz, signature: 'bm90IGEgc2lnbmF0dXJl' }), 422, 'MKT_ERR_SIGNATURE_INVALID'],
      ['signed by a revoked key', async () => publish(k, apiKey, '@acme/notes', await realPackage(oldKey, m)), 422, 'MKT_ERR_KEY_REVOKED'],
      ["into another partner's scope", async () => publish(k, beta.token, '@acme/notes', await realPackage(betaKey, m)), 403, 'MKT_ERR_SCOPE_NOT_OWNED'],
      ['into an unclaimed scope', async () => publish(k, apiKey, '@nobody/notes', await realPackage(acmeKey, await manifestOf('@nobody/notes', '1.0.0'))), 403, 'MKT_ERR_SCOPE_NOT_OWNED'],
      ['by a tenant admin', async () => publish(k, shop.token, '@acme/notes', good), 403, 'AUTH_ERR_FORBIDDEN'],
      ['by a partner key without plugins.publish', async () => publish(k, weakKey, '@acme/notes', good), 403, 'AUTH_ERR_FORBIDDEN'],
      ['by a platform admin', async () => publish(k, k.adminToken, '@acme/notes', good), 403, 'AUTH_ERR_FORBIDDEN'],
      ['without credentials', async () => publish(k, 'trk_not_a_key', '@acme/notes', good), 401, 'AUTH_ERR_INVALID_API_KEY'],
      [
        'without a signature',
        async () => {
          const body = multipart([{ name: 'package', filename: 'p.tgz', content: good.tgz }])
          const res = await k.kernel.app.inject({ method: 'POST', url: '/v1/marketplace/plugins/@acme/notes/versions', headers: { authorization: `Bearer ${apiKey}`, 'content-type': body.contentType }, payload: body.payload })
          return { status: res.statusCode, body: JSON.parse(res.body) }
        },
        400,
        'MKT_ERR_UPLOAD_INVALID',
      ],
      [
        'two files',
        async () => {
          const body = multipart([{ name: 'signature', value: good.signature }, { name: 'package', filename: 'p.tgz', content: good.tgz }, { name: 'package', filename: 'q.tgz', content: good.tgz }])
          const res = await k.kernel.app.inject({ method: 'POST', url: '/v1/marketplace/plugins/@acme/notes/versions', headers: { authorization: `Bearer ${apiKey}`, 'content-type': body.contentType }, payload: body.payload })
          return { status: res.statusCode, body: JSON.parse(res.body) }
        },
        400,
        'MKT_ERR_UPLOAD_INVALID',
      ],
      ['not multipart', async () => k.req('POST', '/v1/marketplace/plugins/@acme/notes/versions', { token: apiKey, body: { package: good.tgz.toString('base64') } }), 415, 'KRN_ERR_UNSUPPORTED_MEDIA_TYPE'],
    ]
    for (const [name, run, status, code] of cases) {
      const r = await run()
      t.equal(r.status, status, `${name}: status`)
      t.equal(r.body?.code, code, `${name}: ${code}`)
    }
    t.same(await counts(k), before, 'no version and no artifact was stored')
    const [ev] = await k.ownerSql<{ n: number }>(`select count(*)::int as n from events where type = 'marketplace.version.published'`)
    t.equal(ev!.n, 0, 'no event was emitted')
    const refused = await k.ownerSql(`select tenant_id, data->>'code' as code from audit_log where action = 'marketplace.version.refused'`)
    t.ok(refused.some((r) => r.tenant_id === acme.id && r.code === 'MKT_ERR_SIGNATURE_INVALID'), 'refusals are audited in the publisher\'s chain')
    t.ok(refused.some((r) => r.tenant_id === acme.id && r.code === 'MKT_ERR_UNSAFE_ENTRY'))
    t.ok(refused.some((r) => r.tenant_id === beta.id && r.code === 'MKT_ERR_SCOPE_NOT_OWNED'))
  })

  let v1 = ''
  await t.test('a good publish with a partner API key: 202, stored, checked, in review', async (t) => {
    const m = await manifestOf('@acme/notes', '1.0.0')
    const pkg = await realPackage(acmeKey, m)
    const r = await publish(k, apiKey, '@acme/notes', pkg, { changelog: 'First release' })
    t.equal(r.status, 202, JSON.stringify(r.body))
    t.equal(r.body.status, 'checking')
    t.equal(r.body.fingerprint, acmeKey.fingerprint)
    t.same(r.body.checks.map((c: any) => c.name), ['package', 'signature', 'manifest-schema', 'name', 'version-monotonic', 'engines'])
    v1 = r.body.id
    const [row] = await k.ownerSql('select name, version, publisher_id, created_by, artifact_sha256, signature, key_id, changelog, code, source_map from plugin_versions where id = ?', [v1])
    t.equal(row.publisher_id, acme.id)
    t.match(row.created_by, /^api_key:/)
    t.equal(row.signature, pkg.signature)
    t.equal(row.changelog, 'First release')
    t.equal(row.code, (await import('./fixtures/packages.js').then((f) => f.notesBuild())).code, 'the bundle is the package\'s')
    const [art] = await k.ownerSql('select sha256, size, bytes from marketplace_artifacts where sha256 = ?', [row.artifact_sha256])
    t.ok(Buffer.from(art.bytes).equals(pkg.tgz), 'the artifact is the exact uploaded bytes')
    t.equal(art.sha256, r.body.artifactSha256)
    // Content-addressed: the same bytes stored again (as the platform does) keep one row; a
    // partner's own transaction cannot store artifacts at all.
    const artifacts = (await counts(k)).artifacts
    await k.appSql('00000000-0000-0000-0000-000000000000', 'insert into marketplace_artifacts (sha256, bytes, size) values (?, ?, ?) on conflict (sha256) do nothing', [art.sha256, pkg.tgz, pkg.tgz.length])
    t.equal((await counts(k)).artifacts, artifacts)
    await t.rejects(k.appSql(acme.id, 'insert into marketplace_artifacts (sha256, bytes, size) values (?, ?, ?)', ['0'.repeat(64), Buffer.from('x'), 1]), 'row-level security keeps partners out of the artifact store')
    await t.rejects(k.appSql(acme.id, `update plugin_versions set status = 'approved' where id = ?::uuid returning id`, [r.body.id]).then((rows) => (rows.length === 0 ? Promise.reject(new Error('no row')) : rows)), 'a partner cannot approve its own version in the database either')

    const done = await checked(k, v1)
    t.equal(done.status, 'in_review')
    t.same(done.checks.map((c) => c.name), ['package', 'signature', 'manifest-schema', 'name', 'version-monotonic', 'engines', 'sandbox-load', 'size-limits', 'capability-diff', 'static-scan'])
    t.notOk(done.checks.some((c) => c.status === 'failed'))
    const diff = done.checks.find((c) => c.name === 'capability-diff')!
    t.equal(diff.details.against, null, 'no earlier approved version')
    t.same(diff.details.diff.capabilities.added, [...m.capabilities].sort())

    const events = await k.ownerSql(`select tenant_id, type from events where type like 'marketplace.version.%' order by id`)
    t.same(events.map((e) => [e.tenant_id, e.type]).sort(), [
      ['00000000-0000-0000-0000-000000000000', 'marketplace.version.checked'],
      ['00000000-0000-0000-0000-000000000000', 'marketplace.version.published'],
      [acme.id, 'marketplace.version.checked'],
      [acme.id, 'marketplace.version.published'],
    ].sort())
    const audit = await k.ownerSql(`select tenant_id from audit_log where action = 'marketplace.version.published'`)
    t.same(audit.map((a) => a.tenant_id).sort(), ['00000000-0000-0000-0000-000000000000', acme.id].sort())

    const asPublisher = await k.req('GET', '/v1/marketplace/plugins/@acme/notes/versions/1.0.0/checks', { token: acme.token })
    t.equal(asPublisher.status, 200)
    t.equal(asPublisher.body.status, 'in_review')
    t.equal(asPublisher.body.checks.length, 10)
    t.equal((await k.req('GET', '/v1/marketplace/plugins/@acme/notes/versions/1.0.0/checks', { token: k.adminToken })).status, 200, 'platform admins see checks')
    t.equal((await k.req('GET', '/v1/marketplace/plugins/@acme/notes/versions/1.0.0/checks', { token: beta.token })).body.code, 'MKT_ERR_VERSION_NOT_FOUND', 'another partner does not')
    t.equal((await k.req('GET', '/v1/marketplace/plugins/@acme/notes/versions/1.0.0/checks', { token: shop.token })).body.code, 'MKT_ERR_VERSION_NOT_FOUND', 'a tenant does not')
  })

  await t.test('versions only go up: the same or a lower version is refused, nothing stored', async (t) => {
    const before = await counts(k)
    for (const version of ['1.0.0', '0.9.0', '1.0.0-rc.1']) {
      const r = await publish(k, apiKey, '@acme/notes', await realPackage(acmeKey, await manifestOf('@acme/notes', version)))
      t.equal(r.body.code, 'MKT_ERR_VERSION_NOT_MONOTONIC', version)
      t.equal(r.status, 409)
    }
    t.same(await counts(k), before)
  })

  await t.test('an upload retried with the same Idempotency-Key is not replayed: it is refused as the same version', async (t) => {
    const pkg = await realPackage(acmeKey, await manifestOf('@acme/idem', '1.0.0'))
    const headers = { 'idempotency-key': 'publish-idem-1' }
    t.equal((await publish(k, apiKey, '@acme/idem', pkg, { headers })).status, 202)
    const again = await publish(k, apiKey, '@acme/idem', pkg, { headers })
    t.equal(again.body.code, 'MKT_ERR_VERSION_NOT_MONOTONIC')
    const other = await publish(k, apiKey, '@acme/idem', await realPackage(acmeKey, await manifestOf('@acme/idem', '1.0.1')), { headers })
    t.equal(other.status, 202, 'another upload with the same key is not answered with the first one\'s response')
    t.not(other.body.id, undefined)
  })

  await t.test('the capability diff is against the previous approved version', async (t) => {
    await k.ownerSql(`update plugin_versions set status = 'approved' where id = ?`, [v1]) // the review half's decision
    const m = await manifestOf('@acme/notes', '1.1.0', (x) => {
      x.capabilities = [...x.capabilities, 'ai:complete']
      x.permissions = [...x.permissions, { name: 'notes.admin', description: 'Administer notes' }]
    })
    const r = await publish(k, acme.token, '@acme/notes', await realPackage(acmeKey, m))
    t.equal(r.status, 202, JSON.stringify(r.body))
    const done = await checked(k, r.body.id)
    t.equal(done.status, 'in_review')
    const diff = done.checks.find((c) => c.name === 'capability-diff')!
    t.same(diff.details.against, { id: v1, version: '1.0.0' })
    t.same(diff.details.diff, { capabilities: { added: ['ai:complete'], removed: [] }, permissions: { added: ['notes.admin'], removed: [] } })
    t.equal(diff.status, 'warning', 'growing capabilities is flagged for the reviewer')
    t.equal(diff.blocking, false)

    // 1.2.0 drops a permission; 1.1.0 is not approved, so the diff is still against 1.0.0.
    const m2 = await manifestOf('@acme/notes', '1.2.0', (x) => {
      x.permissions = []
      x.routes = x.routes.map((route: any) => {
        const { permission: _p, ...rest } = route
        return rest
      })
    })
    const r2 = await publish(k, acme.token, '@acme/notes', await realPackage(acmeKey, m2))
    t.equal(r2.status, 202, JSON.stringify(r2.body))
    const done2 = await checked(k, r2.body.id)
    const diff2 = done2.checks.find((c) => c.name === 'capability-diff')!
    t.same(diff2.details.against, { id: v1, version: '1.0.0' })
    t.same(diff2.details.diff, { capabilities: { added: [], removed: [] }, permissions: { added: [], removed: ['notes.write'] } })
    t.equal(diff2.status, 'passed')
  })

  await t.test('a bundle that misses a declared route fails its checks and never reaches review', async (t) => {
    const m = await manifestOf('@acme/notes', '1.3.0', (x) => x.routes.push({ method: 'GET', path: '/missing' }))
    const r = await publish(k, acme.token, '@acme/notes', await realPackage(acmeKey, m))
    t.equal(r.status, 202)
    const done = await checked(k, r.body.id)
    t.equal(done.status, 'failed_checks')
    const load = done.checks.find((c) => c.name === 'sandbox-load')!
    t.equal(load.status, 'failed')
    t.equal(load.blocking, true)
    t.match(load.details.errors, [{ rule: 'route-unhandled', pointer: '/routes/5' }])
    const view = await k.req('GET', '/v1/marketplace/plugins/@acme/notes/versions/1.3.0/checks', { token: acme.token })
    t.equal(view.body.status, 'failed_checks')
  })

  await t.test('a bundle that does not load fails sandbox-load', async (t) => {
    const m = await manifestOf('@acme/notes', '1.4.0')
    const r = await publish(k, acme.token, '@acme/notes', await realPackage(acmeKey, m, { code: () => 'throw new Error("boom at load")' }))
    t.equal(r.status, 202)
    const done = await checked(k, r.body.id)
    t.equal(done.status, 'failed_checks')
    t.match(done.checks.find((c) => c.name === 'sandbox-load')!.details.reason, /does not load/)
  })

  await t.test('a bundle that never finishes loading fails sandbox-load', async (t) => {
    const m = await manifestOf('@acme/notes', '1.4.1')
    const r = await publish(k, acme.token, '@acme/notes', await realPackage(acmeKey, m, { code: () => 'for (;;) {}' }))
    t.equal(r.status, 202)
    const started = Date.now()
    const done = await checked(k, r.body.id)
    t.equal(done.status, 'failed_checks')
    t.equal(done.checks.find((c) => c.name === 'sandbox-load')!.status, 'failed')
    t.ok(Date.now() - started < 30_000, `stopped by the sandbox's limits (${Date.now() - started} ms)`)
  })

  await t.test('workers in several processes never check one version twice', async (t) => {
    const { ChecksWorker } = await import('../src/publishing/index.js')
    const ids: string[] = []
    for (const version of ['1.0.0', '1.0.1', '1.0.2', '1.0.3']) {
      const r = await publish(k, acme.token, '@acme/multi', await realPackage(acmeKey, await manifestOf('@acme/multi', version)))
      t.equal(r.status, 202)
      ids.push(r.body.id)
    }
    const a = new ChecksWorker(k.kernel.ctx)
    const b = new ChecksWorker(k.kernel.ctx)
    await Promise.all([a.drain(), b.drain(), a.drain(), b.drain()])
    for (const id of ids) await checked(k, id)
    const rows = await k.ownerSql(`select status, checks_attempts from plugin_versions where name = '@acme/multi' order by id`)
    t.same(rows.map((r) => [r.status, r.checks_attempts]), ids.map(() => ['in_review', 1]), 'each version was claimed exactly once')
    const audit = await k.ownerSql(`select target_id from audit_log where action = 'marketplace.version.checked' and data->>'name' = '@acme/multi'`)
    t.equal(audit.length, 4)
  })

  await t.test('dynamic code generation is a warning, not a failure', async (t) => {
    const m = await manifestOf('@acme/notes', '1.5.0')
    const r = await publish(k, acme.token, '@acme/notes', await realPackage(acmeKey, m, { code: (c) => c + '\n;globalThis.__probe = function () { return [eval("1"), new Function("return 2"), Function("return 3")] }\n' }))
    const done = await checked(k, r.body.id)
    t.equal(done.status, 'in_review')
    const scan = done.checks.find((c) => c.name === 'static-scan')!
    t.equal(scan.status, 'warning')
    t.same(scan.details.findings.map((f: any) => f.rule), ['eval', 'new-function', 'function-constructor'])
    t.equal(scan.blocking, false)
  })

  await t.test('key rotation: a new key publishes, the revoked old one cannot', async (t) => {
    const next = await newSigner()
    const reg = await k.req('POST', '/v1/marketplace/keys', { token: acme.token, body: { name: 'next', publicKey: next.publicKeyPem } })
    const list = (await k.req('GET', '/v1/marketplace/keys', { token: acme.token })).body.items
    const ci = list.find((x: any) => x.name === 'ci')
    await k.req('POST', `/v1/marketplace/keys/${ci.id}/revoke`, { token: acme.token })
    const before = await counts(k)
    const refused = await publish(k, acme.token, '@acme/notes', await realPackage(acmeKey, await manifestOf('@acme/notes', '1.6.0')))
    t.equal(refused.body.code, 'MKT_ERR_KEY_REVOKED')
    t.same(await counts(k), before)
    const ok = await publish(k, acme.token, '@acme/notes', await realPackage(next, await manifestOf('@acme/notes', '1.6.0')))
    t.equal(ok.status, 202)
    t.equal(ok.body.keyId, reg.body.id)
  })

  await t.test('a version whose checker died is checked again once its lease has expired', async (t) => {
    const r = await publish(k, acme.token, '@acme/notes', await realPackage((await signerFor(k, acme)), await manifestOf('@acme/notes', '1.7.0')))
    t.equal(r.status, 202)
    // As if a process had claimed it and died: a lease, already expired, and one attempt.
    await k.ownerSql(`update plugin_versions set checks_lease_until = now() - interval '1 second', checks_attempts = 1 where id = ?`, [r.body.id])
    const done = await checked(k, r.body.id)
    t.equal(done.status, 'in_review')
    // A live lease is respected: another worker leaves it alone.
    const r2 = await publish(k, acme.token, '@acme/notes', await realPackage(await signerFor(k, acme), await manifestOf('@acme/notes', '1.8.0')))
    await k.ownerSql(`update plugin_versions set checks_lease_until = now() + interval '1 hour' where id = ?`, [r2.body.id])
    await checksWorkerOf(k.kernel.ctx)!.drain()
    const [row] = await k.ownerSql('select status from plugin_versions where id = ?', [r2.body.id])
    t.equal(row.status, 'checking')
    // A bundle that keeps bringing the checker down fails after its attempts.
    await k.ownerSql(`update plugin_versions set checks_lease_until = null, checks_attempts = 3 where id = ?`, [r2.body.id])
    const failed = await checked(k, r2.body.id)
    t.equal(failed.status, 'failed_checks')
    t.equal(failed.checks.find((c) => c.name === 'checks-run')?.status, 'failed')
  })
}

// The signer currently registered and active for a partner in the test above.
const signers = new Map<string, Signer>()
async function signerFor(k: TestKernel, p: Partner): Promise<Signer> {
  let s = signers.get(p.id)
  if (!s) {
    s = await newSigner()
    const r = await k.req('POST', '/v1/marketplace/keys', { token: p.token, body: { name: `extra-${Date.now()}`, publicKey: s.publicKeyPem } })
    if (r.status !== 201) throw new Error(JSON.stringify(r.body))
    signers.set(p.id, s)
  }
  return s
}
