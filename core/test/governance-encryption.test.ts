// Personal fields encrypted at rest: what the database holds (tokens and ciphertext, never the
// values), the round trip through a plugin's routes, exact-match lookup through the blind index,
// the queries refused on encrypted fields, key rotation and platform-key re-wrapping — and the
// attacks: ciphertext (and keys) copied from one tenant into another.
import t from 'tap'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { buildPlugin } from '@trellis/plugin-sdk'
import { DB_KINDS, startTestKernel, createTenantWithAdmin } from './helpers/test-kernel.js'
import { registerVersion } from './helpers/plugin-versions.js'
import { CollectionStore, type CollectionRef } from '../src/plugins/data/index.js'
import { ProtectedFields, TenantKeyring } from '../src/governance/index.js'

const dir = join(import.meta.dirname, 'fixtures', 'plugins', 'contacts')
const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
const built = await buildPlugin({ dir, write: false })
const bundle = { manifest, code: built.code, sourceMap: built.sourceMap }
const ref: CollectionRef = {
  plugin: '@acme/contacts',
  name: 'contacts',
  schema: manifest.collections.contacts.schema,
  indexes: manifest.collections.contacts.indexes,
}

for (const kind of DB_KINDS)
  t.test(`encrypted personal fields on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind, { plugins: { sandboxWorkers: 1 } })
    await registerVersion(k, bundle)
    const a = await createTenantWithAdmin(k, 'gov-a')
    const b = await createTenantWithAdmin(k, 'gov-b')
    for (const tenant of [a, b]) {
      const r = await k.req('POST', '/v1/installations', {
        token: tenant.token,
        body: { plugin: '@acme/contacts', version: '1.0.0', capabilities: ['data', 'ai:complete'] },
      })
      t.equal(r.status, 201, JSON.stringify(r.body))
    }
    const api = (tenant: { token: string }, method: string, path: string, body?: unknown) =>
      k.req(method, `/v1/x/@acme/contacts${path}`, { token: tenant.token, ...(body === undefined ? {} : { body }) })
    const raw = (id: string) =>
      k.ownerSql<{ data: Record<string, unknown>; text: string }>(
        'select data, data::text as text from plugin_records where id = ?::uuid',
        [id],
      )
    const search = (tenant: { token: string }, query: unknown) => api(tenant, 'POST', '/contacts/search', query)

    const ada = { name: 'Ada Lovelace', email: 'ada@example.test', taxId: 'GB-123-45-6789', city: 'London' }
    const created = await api(a, 'POST', '/contacts', ada)
    t.equal(created.status, 201, JSON.stringify(created.body))
    const adaId = created.body.id as string

    await t.test('the raw row holds a token and ciphertext, never the personal values', async (t) => {
      t.match(created.body, ada, 'the plugin gets back what it wrote')
      const [row] = await raw(adaId)
      t.notOk(row!.text.includes('ada@example.test'), 'no e-mail in the row')
      t.notOk(row!.text.includes('GB-123-45-6789'), 'no tax id in the row')
      t.notOk(row!.text.includes('ada@'), 'not even a part of it')
      t.match(row!.data.email, /^bi1\.[A-Za-z0-9_-]{22}$/, 'the field holds its blind-index token')
      t.match(row!.data['$e:email'], /^f1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/)
      t.match(row!.data['$e:taxId'], /^f1\./)
      t.equal(row!.data.name, 'Ada Lovelace', 'an internal field is stored as it is')
      t.equal(row!.data.city, 'London', 'a public field is stored as it is')
      const keys = await k.ownerSql<{ kind: string; wrapped: string }>(
        'select kind, wrapped from tenant_keys where tenant_id = ?::uuid',
        [a.orgId],
      )
      t.same(keys.map((x) => x.kind).sort(), ['data', 'index'], 'a data key and an index key, created on first use')
      t.ok(
        keys.every((x) => x.wrapped.startsWith('v1.')),
        'stored wrapped by the platform key',
      )
    })

    await t.test('keys made by an invocation that rolls back are never used', async (t) => {
      // Tenant B's first encrypted write creates its keys, then the invocation fails.
      const failed = await api(b, 'POST', '/contacts', { name: 'Gone', email: 'gone@example.test', fail: true })
      t.ok(failed.status >= 500, `the invocation failed (${failed.status})`)
      const keys = await k.ownerSql('select id from tenant_keys where tenant_id = ?::uuid', [b.orgId])
      t.same(keys, [], 'its keys went with it')
      const again = await api(b, 'POST', '/contacts', { name: 'Kept', email: 'kept-b@example.test' })
      t.equal(again.status, 201, JSON.stringify(again.body))
      t.equal((await api(b, 'GET', `/contacts/${again.body.id}`)).body.email, 'kept-b@example.test')
      t.equal((await k.ownerSql('select id from tenant_keys where tenant_id = ?::uuid', [b.orgId])).length, 2)
    })

    await t.test('round trip through the plugin: get, exact-match lookup, update', async (t) => {
      const got = await api(a, 'GET', `/contacts/${adaId}`)
      t.equal(got.status, 200)
      t.match(got.body, ada)
      const eq = await search(a, { where: { email: 'ada@example.test' } })
      t.equal(eq.status, 200, JSON.stringify(eq.body))
      t.same(
        eq.body.items.map((c: { id: string }) => c.id),
        [adaId],
      )
      t.equal(eq.body.items[0].taxId, 'GB-123-45-6789')
      const inq = await search(a, { where: { email: { in: ['nobody@example.test', 'ada@example.test'] } } })
      t.same(
        inq.body.items.map((c: { id: string }) => c.id),
        [adaId],
      )
      const none = await search(a, { where: { email: 'ADA@example.test' } })
      t.same(none.body.items, [], 'exact match only')
      const ne = await search(a, { where: { email: { ne: 'ada@example.test' } } })
      t.same(ne.body.items, [])
      const nullTax = await api(a, 'POST', '/contacts', { name: 'Null Tax', email: 'null@example.test', taxId: null })
      t.equal(nullTax.status, 201)
      const byNull = await search(a, { where: { taxId: null } })
      t.same(
        byNull.body.items.map((c: { id: string }) => c.id),
        [nullTax.body.id],
      )
      t.equal(byNull.body.items[0].taxId, null)

      const dup = await api(a, 'POST', '/contacts', { name: 'Twin', email: 'ada@example.test' })
      t.same(dup.body, { code: 'KRN_ERR_CONFLICT' }, 'a unique index on an encrypted field holds (on its token)')

      const changed = await api(a, 'PATCH', `/contacts/${adaId}`, {
        patch: { email: 'countess@example.test' },
        version: 1,
      })
      t.equal(changed.status, 200, JSON.stringify(changed.body))
      t.equal(changed.body.email, 'countess@example.test')
      t.equal(changed.body.taxId, 'GB-123-45-6789', 'fields not patched keep their value')
      t.same((await search(a, { where: { email: 'ada@example.test' } })).body.items, [])
      t.equal((await search(a, { where: { email: 'countess@example.test' } })).body.items.length, 1)

      const bad = await api(a, 'PATCH', `/contacts/${adaId}`, { patch: { email: 'not an e-mail' }, version: 2 })
      t.same(bad.body, { code: 'KRN_ERR_VALIDATION_FAILED' }, 'validated on the plaintext')
      const after = await api(a, 'GET', `/contacts/${adaId}`)
      t.equal(after.body.email, 'countess@example.test', 'nothing half-written: the refused update left the record')
      t.equal(after.body.version, 2)
      t.notOk((await raw(adaId))[0]!.text.includes('countess'), 'still encrypted at rest')
    })

    await t.test('personal values the invocation read are masked before a prompt leaves the kernel', async (t) => {
      const zed = await api(a, 'POST', '/contacts', { name: 'Zed', email: 'zed@example.test', taxId: 'ZZ-SECRET-77' })
      const r = await api(a, 'POST', `/contacts/${zed.body.id}/ask`, { question: 'Who is this?' })
      t.equal(r.status, 200, JSON.stringify(r.body))
      const [record] = await k.ownerSql<{ prompt: string; verdicts: { masked?: Record<string, number> } }>(
        'select prompt, verdicts from ai_records where id = ?::uuid',
        [r.body.recordId],
      )
      t.ok(record, 'the call is recorded')
      t.notOk(record!.prompt.includes('ZZ-SECRET-77'), 'the sensitive-personal value never reached the model')
      t.match(record!.prompt, /\[PERSONAL_\d+\]/, 'it was replaced by a placeholder')
      t.ok(record!.prompt.includes('Zed'), 'an internal field is not masked')
      t.ok((record!.verdicts.masked?.PERSONAL ?? 0) >= 1, 'and counted among the masked values')
    })

    await t.test('the query language refuses what it cannot answer on an encrypted field', async (t) => {
      for (const query of [
        { where: { email: { prefix: 'countess' } } },
        { where: { email: { contains: 'example' } } },
        { where: { email: { gt: 'a' } } },
        { where: { or: [{ city: 'London' }, { taxId: { lte: 'Z' } }] } },
        { sort: [{ field: 'email' }] },
        { where: { '$e:email': { prefix: 'f1.' } } },
      ]) {
        const r = await search(a, query)
        t.same(r.body, { code: 'GOV_ERR_ENCRYPTED_FIELD_QUERY' }, JSON.stringify(query))
      }
      const plain = await search(a, { where: { city: { prefix: 'Lon' } }, sort: [{ field: 'name' }] })
      t.equal(plain.status, 200, 'other fields query as before')
      t.equal(plain.body.items.length, 1)
      const forged = await api(a, 'POST', '/contacts', { name: 'X', email: 'x@example.test', '$e:email': 'f1.x' })
      t.equal(forged.status, 400, 'a record cannot carry a ciphertext key of its own')
    })

    await t.test('the blind index leaks no plaintext and differs between tenants', async (t) => {
      const same = { name: 'Grace', email: 'grace@example.test' }
      const inA = await api(a, 'POST', '/contacts', same)
      const inB = await api(b, 'POST', '/contacts', same)
      const [ra] = await raw(inA.body.id)
      const [rb] = await raw(inB.body.id)
      t.not(ra!.data.email, rb!.data.email, 'the same e-mail gives unrelated tokens in two tenants')
      t.notOk(String(ra!.data.email).includes('grace'))
      t.same(
        (await search(b, { where: { email: 'grace@example.test' } })).body.items.map((c: { id: string }) => c.id),
        [inB.body.id],
        'each tenant finds its own',
      )
    })

    await t.test("attack: tenant B's key cannot decrypt tenant A's rows", async (t) => {
      // B's record gets A's stored email token and ciphertext, copied by someone with SQL access.
      const victim = await api(b, 'POST', '/contacts', { name: 'Mallory', email: 'mallory@example.test' })
      const [stolen] = await raw(adaId)
      await k.ownerSql(
        `update plugin_records set data = data || jsonb_build_object('email', ?::text, '$e:email', ?::text) where id = ?::uuid`,
        [stolen!.data.email, stolen!.data['$e:email'], victim.body.id],
      )
      const read = await api(b, 'GET', `/contacts/${victim.body.id}`)
      t.ok(read.status >= 400, `refused (${read.status})`)
      t.equal(read.body.code, 'GOV_ERR_FIELD_UNREADABLE')
      t.notOk(JSON.stringify(read.body).includes('countess'), 'the plaintext never reaches tenant B')
      t.same(
        (await search(b, { where: { email: 'countess@example.test' } })).body.items,
        [],
        "A's e-mail finds nothing in B: B's index key gives another token",
      )
      // Also copy A's data key into B's keyring: it is wrapped for tenant A and does not unwrap for B.
      const keyId = String(stolen!.data['$e:email']).split('.')[1]
      await k.ownerSql(
        `insert into tenant_keys (tenant_id, id, kind, status, wrapped, platform_key)
         select ?::uuid, id, kind, 'retired', wrapped, platform_key from tenant_keys where tenant_id = ?::uuid and id = ?`,
        [b.orgId, a.orgId, keyId],
      )
      const again = await api(b, 'GET', `/contacts/${victim.body.id}`)
      t.ok(again.status >= 400, `still refused with the key copied (${again.status})`)
      t.notOk(JSON.stringify(again.body).includes('countess'))
      // Within A, a ciphertext moved to another record does not decrypt either (bound to its record).
      const other = await api(a, 'POST', '/contacts', { name: 'Moved', email: 'moved@example.test' })
      await k.ownerSql(
        `update plugin_records set data = data || jsonb_build_object('$e:email', ?::text) where id = ?::uuid`,
        [stolen!.data['$e:email'], other.body.id],
      )
      t.ok((await api(a, 'GET', `/contacts/${other.body.id}`)).status >= 400, 'a ciphertext is bound to its record')
      await k.ownerSql('delete from plugin_records where id = any(?::uuid[])', [`{${victim.body.id},${other.body.id}}`])
      await k.ownerSql('delete from tenant_keys where tenant_id = ?::uuid and id = ?', [b.orgId, keyId])
    })

    await t.test(
      'key rotation: new values use the new key, older ones stay readable, lookups keep working',
      async (t) => {
        const before = String((await raw(adaId))[0]!.data['$e:email']).split('.')[1]
        const rotated = await k.req('POST', '/v1/governance/keys/rotate', { token: a.token })
        t.equal(rotated.status, 200, JSON.stringify(rotated.body))
        t.same(rotated.body.retired, [before], 'the key in use is retired')
        const listed = await k.req('GET', '/v1/governance/keys', { token: a.token })
        t.same(listed.body.items.map((x: { kind: string; status: string }) => `${x.kind}:${x.status}`).sort(), [
          'data:active',
          'data:retired',
          'index:active',
        ])
        t.notOk(JSON.stringify(listed.body).includes('v1.'), 'no key material is listed')
        const audit = await k.ownerSql(
          `select 1 from audit_log where tenant_id = ?::uuid and action = 'governance.key.rotated'`,
          [a.orgId],
        )
        t.equal(audit.length, 1, 'audited')

        const old = await api(a, 'GET', `/contacts/${adaId}`)
        t.equal(old.body.email, 'countess@example.test', 'a value under the retired key reads')
        const fresh = await api(a, 'POST', '/contacts', { name: 'New', email: 'new@example.test' })
        t.equal(String((await raw(fresh.body.id))[0]!.data['$e:email']).split('.')[1], rotated.body.id)
        t.equal((await search(a, { where: { email: 'countess@example.test' } })).body.items.length, 1)
        const rewritten = await api(a, 'PATCH', `/contacts/${adaId}`, {
          patch: { email: 'ada.king@example.test' },
          version: old.body.version,
        })
        t.equal(rewritten.status, 200)
        t.equal(String((await raw(adaId))[0]!.data['$e:email']).split('.')[1], rotated.body.id, 're-encrypted on write')

        const forbidden = await k.req('POST', '/v1/governance/keys/rotate', { token: k.adminToken })
        t.equal(forbidden.status, 403, 'the platform cannot rotate a tenant key')
      },
    )

    await t.test('platform key change: keys are re-wrapped, values untouched, old key no longer needed', async (t) => {
      const c = b // the last use of tenant B: afterwards only the new platform key reads its values
      const made = await api(c, 'POST', '/contacts', { name: 'Kept', email: 'kept@example.test' })
      const before = (await raw(made.body.id))[0]!.text
      const oldSecret = k.kernel.ctx.config.secretKey
      const newSecret = randomBytes(32)
      const db = k.kernel.ctx.db
      const rotating = new TenantKeyring(newSecret, [oldSecret])
      const n = await db.inOrg(c.orgId, (tx) => rotating.rewrap(tx))
      t.equal(n, 2, 'the data key and the index key')
      t.equal((await raw(made.body.id))[0]!.text, before, 'no value was rewritten')
      const onlyNew = new CollectionStore(new ProtectedFields(new TenantKeyring(newSecret)))
      const read = await db.inOrg(c.orgId, (tx) => onlyNew.get(tx, ref, made.body.id))
      t.equal(read?.email, 'kept@example.test', 'readable with the new platform key alone')
      const found = await db.inOrg(c.orgId, (tx) => onlyNew.find(tx, ref, { where: { email: 'kept@example.test' } }))
      t.equal(found.items.length, 1, 'and found through the blind index')
      const onlyOld = new CollectionStore(new ProtectedFields(new TenantKeyring(oldSecret)))
      await t.rejects(
        db.inOrg(c.orgId, (tx) => onlyOld.get(tx, ref, made.body.id)),
        { code: 'GOV_ERR_KEY_UNAVAILABLE' },
        'the old platform key no longer unwraps them',
      )
    })
  })
