// Export and restore of a tenant: the archive a tenant admin downloads (manifest, checksums,
// personal fields, sealed secrets, the audit chain), its restore into a new tenant by a platform
// admin — every record, setting, role and member reproduced, personal fields re-keyed for the new
// tenant — and the attacks: an altered archive, a forged one with recomputed checksums, a target
// that is not new, callers without the right.
import t from 'tap'
import { createHash } from 'node:crypto'
import { DB_KINDS, addUser, createTenantWithAdmin, startTestKernel } from './helpers/test-kernel.js'
import { builtFixture, registerVersion } from './helpers/plugin-versions.js'
import { eventually } from './helpers/receiver.js'
import { readArchive, verifyArchiveAudit } from '../src/governance/index.js'
import { writeArchive, type TenantArchive } from '../src/governance/export-archive.js'

const contacts = await builtFixture('contacts')
const notes = await builtFixture('notes')
const ARCHIVE = 'application/x-ndjson'
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

/** An archive re-written after `change` — what a forger who recomputes the checksums produces. */
function forged(text: string, change: (a: TenantArchive) => void): string {
  const a = readArchive(text)
  change(a)
  const { sections: _, ...manifest } = a.manifest
  return writeArchive(manifest, a.sections).text
}

for (const kind of DB_KINDS)
  t.test(`export and restore on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind, { plugins: { sandboxWorkers: 1 } })
    await registerVersion(k, contacts)
    await registerVersion(k, notes)
    const a = await createTenantWithAdmin(k, 'export-a')
    for (const body of [
      { plugin: '@acme/contacts', version: '1.0.0', capabilities: contacts.manifest.capabilities },
      {
        plugin: '@acme/notes',
        version: '1.0.0',
        capabilities: notes.manifest.capabilities,
        settings: { greeting: 'Hello from A', apiToken: 'tok-secret-4711' },
      },
    ]) {
      const r = await k.req('POST', '/v1/installations', { token: a.token, body })
      t.equal(r.status, 201, JSON.stringify(r.body))
    }
    const role = await k.req('POST', '/v1/roles', {
      token: a.token,
      body: { name: 'auditor', description: 'reads the audit log', permissions: ['audit.read', 'users.read'] },
    })
    t.equal(role.status, 201, JSON.stringify(role.body))
    const auditor = await addUser(k, a.token, 'auditor@export-a.test', 'auditor')
    const member = await addUser(k, a.token, 'member@export-a.test', 'tenant_member')

    const x = (tenant: { token: string }, plugin: string, method: string, path: string, body?: unknown) =>
      k.req(method, `/v1/x/${plugin}${path}`, { token: tenant.token, ...(body === undefined ? {} : { body }) })
    const people = [
      { name: 'Ada Lovelace', email: 'ada@example.test', taxId: 'GB-123-45-6789', city: 'London' },
      { name: 'Grace Hopper', email: 'grace@example.test', taxId: null, city: 'Arlington' },
      { name: 'Edsger Dijkstra', email: 'edsger@example.test' },
    ]
    const contactIds: string[] = []
    for (const p of people) {
      const r = await x(a, '@acme/contacts', 'POST', '/contacts', p)
      t.equal(r.status, 201, JSON.stringify(r.body))
      contactIds.push(r.body.id)
    }
    const changed = await x(a, '@acme/contacts', 'PATCH', `/contacts/${contactIds[0]}`, {
      patch: { city: 'Marylebone' },
      version: 1,
    })
    t.equal(changed.status, 200, 'one record is at version 2')
    for (const title of ['Quarterly review', 'Supplier call']) {
      const r = await x(a, '@acme/notes', 'POST', '/notes', { title, tags: ['ops'] })
      t.equal(r.status, 201, JSON.stringify(r.body))
    }
    // The notes plugin marks each new note seen from its event handler: wait for it, so the export
    // holds the notes as they stay.
    await eventually(async () => {
      const listed = (await x(a, '@acme/notes', 'GET', '/notes')).body.items as Array<{ seen?: boolean }>
      return listed.every((n) => n.seen)
    }, 30_000)

    // Read as text: the archive is JSON Lines, not one JSON document.
    const exported = await k.kernel.app.inject({
      method: 'GET',
      url: '/v1/governance/export',
      headers: { authorization: `Bearer ${a.token}` },
    })
    const text = exported.body

    await t.test('a tenant admin downloads a checksummed archive of everything the tenant holds', async (t) => {
      t.equal(exported.statusCode, 200, text.slice(0, 300))
      t.match(String(exported.headers['content-type']), ARCHIVE)
      t.equal(exported.headers['x-trellis-archive-sha256'], sha256(text), 'the header gives the archive checksum')
      const archive = readArchive(text)
      const m = archive.manifest
      t.equal(m.tenant.id, a.orgId)
      t.same(Object.fromEntries(Object.entries(m.sections).map(([s, v]) => [s, v.count])), {
        roles: 1,
        members: 3,
        installations: 2,
        records: 5,
        audit: archive.sections.audit.length,
      })
      t.same(
        m.personalFields.map((f) => `${f.collection}.${f.field}:${f.classification}`).sort(),
        ['contacts.email:personal', 'contacts.taxId:sensitive-personal'],
        'the manifest names the personal fields',
      )
      const ada = archive.sections.records.find((r) => r.id === contactIds[0])!
      t.match(ada, { version: 2, data: { email: 'ada@example.test', taxId: 'GB-123-45-6789', city: 'Marylebone' } })
      t.notOk(
        Object.keys(ada.data).some((f) => f.startsWith('$e:')),
        'decrypted: no ciphertext keys',
      )
      t.notOk(text.includes('tok-secret-4711'), 'a secret setting never appears in clear')
      const inst = archive.sections.installations.find((i) => i.plugin === '@acme/notes')!
      t.same(inst.settings, { greeting: 'Hello from A' })
      t.same(inst.secretNames, ['apiToken'])
      t.match(inst.secretsSealed, /^v1\./, 'it travels sealed')
      t.same(archive.sections.members.map((x) => `${x.email}:${x.role}`).sort(), [
        'admin@export-a.test:tenant_admin',
        'auditor@export-a.test:auditor',
        'member@export-a.test:tenant_member',
      ])
      t.same(verifyArchiveAudit(archive), { ok: true, entries: archive.sections.audit.length })
      const [head] = await k.ownerSql<{ hash: string }>(
        'select hash from audit_log where tenant_id = ?::uuid and seq = ?::bigint',
        [a.orgId, m.auditHead!.seq],
      )
      t.equal(head!.hash, m.auditHead!.hash, "the archive's chain head is the tenant's own")
      t.ok(
        archive.sections.audit.some((e) => e.action === 'plugin.installed'),
        'the audit section holds the tenant history',
      )
      const [entry] = await k.ownerSql<{ data: { sha256: string } }>(
        `select data from audit_log where tenant_id = ?::uuid and action = 'governance.tenant.exported'`,
        [a.orgId],
      )
      t.equal(entry!.data.sha256, sha256(text), 'the export is audited with the checksum')
    })

    await t.test('who may export: a tenant admin only', async (t) => {
      const byMember = await k.req('GET', '/v1/governance/export', { token: member.token })
      t.equal(byMember.body.code, 'AUTH_ERR_FORBIDDEN')
      const byAuditor = await k.req('GET', '/v1/governance/export', { token: auditor.token })
      t.equal(byAuditor.body.code, 'AUTH_ERR_FORBIDDEN', 'reading the audit log is not exporting the data')
      const anonymous = await k.req('GET', '/v1/governance/export')
      t.equal(anonymous.body.code, 'AUTH_ERR_UNAUTHENTICATED')
    })

    const b = await createTenantWithAdmin(k, 'export-b')
    const restore = (tenantId: string, body: string, token = k.adminToken) =>
      k.req('POST', `/v1/tenants/${tenantId}/restore`, { token, raw: body, headers: { 'content-type': ARCHIVE } })
    const restored = await restore(b.orgId, text)

    await t.test('a platform admin restores it into a new tenant: every record and setting reproduced', async (t) => {
      t.equal(restored.status, 200, JSON.stringify(restored.body))
      t.match(restored.body, {
        tenantId: b.orgId,
        source: { tenantId: a.orgId, slug: 'export-a' },
        archiveSha256: sha256(text),
        restored: { roles: 1, installations: 2, records: 5 },
        emailed: false,
      })
      t.same(
        restored.body.invited.map((i: { email: string; role: string }) => `${i.email}:${i.role}`).sort(),
        ['admin@export-a.test:tenant_admin', 'auditor@export-a.test:auditor', 'member@export-a.test:tenant_member'],
        'every member of the source is invited with their role (the new tenant has its own admin already)',
      )
      const rows = (org: string) =>
        k.ownerSql<{
          plugin: string
          collection: string
          id: string
          version: number
          created: string
          updated: string
        }>(
          `select plugin, collection, id::text as id, version, to_json(created_at) #>> '{}' as created, to_json(updated_at) #>> '{}' as updated
             from plugin_records where tenant_id = ?::uuid order by plugin, collection, id`,
          [org],
        )
      t.same(await rows(b.orgId), await rows(a.orgId), 'same records: ids, versions, times')
      for (const id of contactIds) {
        const inA = await x(a, '@acme/contacts', 'GET', `/contacts/${id}`)
        const inB = await x(b, '@acme/contacts', 'GET', `/contacts/${id}`)
        t.equal(inB.status, 200, JSON.stringify(inB.body))
        t.same(inB.body, inA.body, `contact ${inA.body.name} reads the same`)
      }
      t.same(
        (await x(b, '@acme/notes', 'GET', '/notes')).body,
        (await x(a, '@acme/notes', 'GET', '/notes')).body,
        'notes list the same',
      )
      const who = await x(b, '@acme/notes', 'GET', '/whoami')
      t.same(who.body.settings, { greeting: 'Hello from A' }, 'settings restored')
      t.equal(who.body.token, 'tok-secret-4711', 'the sealed secret was re-sealed for the new installation')

      const rolesOf = (org: string) =>
        k.ownerSql(
          `select r.name, r.permissions, r.description from roles r where r.tenant_id = ?::uuid and not builtin order by name`,
          [org],
        )
      t.same(await rolesOf(b.orgId), await rolesOf(a.orgId), 'custom roles reproduced')
      // The auditor accepts the invitation with their account and works with the restored role.
      const invitation = restored.body.invited.find((i: { email: string }) => i.email === 'auditor@export-a.test')
      const accepted = await k.req('POST', '/v1/invitations/accept', {
        body: { token: invitation.acceptToken, password: auditor.password },
      })
      t.equal(accepted.status, 200, JSON.stringify(accepted.body))
      const asAuditor = await k.login('auditor@export-a.test', auditor.password, b.orgId)
      t.equal(
        (await k.req('GET', '/v1/audit', { token: asAuditor.token })).status,
        200,
        'audit.read, from the restored role',
      )
      t.equal(
        (await k.req('GET', '/v1/governance/export', { token: asAuditor.token })).body.code,
        'AUTH_ERR_FORBIDDEN',
        'and nothing more',
      )
      const installs = await k.req('GET', '/v1/installations', { token: b.token })
      t.same(installs.body.items.map((i: { plugin: string; version: string }) => `${i.plugin}@${i.version}`).sort(), [
        '@acme/contacts@1.0.0',
        '@acme/notes@1.0.0',
      ])
    })

    await t.test('personal fields are re-keyed for the new tenant, and still work', async (t) => {
      const raw = (org: string, id: string) =>
        k.ownerSql<{ data: Record<string, string>; text: string }>(
          'select data, data::text as text from plugin_records where tenant_id = ?::uuid and id = ?::uuid',
          [org, id],
        )
      const [inA] = await raw(a.orgId, contactIds[0]!)
      const [inB] = await raw(b.orgId, contactIds[0]!)
      t.notOk(inB!.text.includes('ada@example.test'), 'encrypted at rest in the new tenant')
      t.notOk(inB!.text.includes('GB-123'), 'the sensitive field too')
      t.not(inB!.data.email, inA!.data.email, "the blind index is the new tenant's")
      const keyId = inB!.data['$e:email']!.split('.')[1]
      const keys = await k.ownerSql<{ tenant_id: string }>('select tenant_id::text from tenant_keys where id = ?', [
        keyId,
      ])
      t.same(
        keys.map((r) => r.tenant_id),
        [b.orgId],
        "encrypted under the new tenant's data key",
      )
      const found = await x(b, '@acme/contacts', 'POST', '/contacts/search', { where: { email: 'grace@example.test' } })
      t.same(
        found.body.items.map((c: { id: string }) => c.id),
        [contactIds[1]],
        'exact-match lookup works on the new tokens',
      )
      const dup = await x(b, '@acme/contacts', 'POST', '/contacts', { name: 'Twin', email: 'ada@example.test' })
      t.equal(dup.body.code, 'KRN_ERR_CONFLICT', 'the unique index holds on the restored values')
      // A's ciphertext copied into B's restored row does not decrypt there.
      await k.ownerSql(
        `update plugin_records set data = data || jsonb_build_object('$e:taxId', ?::text) where tenant_id = ?::uuid and id = ?::uuid`,
        [inA!.data['$e:taxId'], b.orgId, contactIds[0]],
      )
      t.equal((await x(b, '@acme/contacts', 'GET', `/contacts/${contactIds[0]}`)).body.code, 'GOV_ERR_FIELD_UNREADABLE')
    })

    await t.test('the restore is audited in both chains with the archive checksum', async (t) => {
      for (const org of [b.orgId, '00000000-0000-0000-0000-000000000000']) {
        const [e] = await k.ownerSql<{ data: { archiveSha256: string; source: { tenantId: string } } }>(
          `select data from audit_log where tenant_id = ?::uuid and action = 'governance.tenant.restored'`,
          [org],
        )
        t.equal(e?.data.archiveSha256, sha256(text))
        t.equal(e?.data.source.tenantId, a.orgId)
      }
    })

    await t.test('attacks and bad archives: refused with a code, nothing written', async (t) => {
      const c = await createTenantWithAdmin(k, 'export-c')
      const nothingIn = async (org: string) => {
        const [n] = await k.ownerSql<{ n: number }>(
          `select (select count(*) from plugin_installations where tenant_id = ?::uuid)
                + (select count(*) from plugin_records where tenant_id = ?::uuid)
                + (select count(*) from roles where tenant_id = ?::uuid) as n`,
          [org, org, org],
        )
        t.equal(Number(n!.n), 0, 'the target holds nothing of the archive')
      }
      const altered = text.replace('Edsger Dijkstra', 'Edsger Dykstra')
      t.not(altered, text)
      t.equal((await restore(c.orgId, altered)).body.code, 'GOV_ERR_ARCHIVE_CHECKSUM', 'an altered record')
      const truncated = text.split('\n').slice(0, -3).join('\n')
      t.equal((await restore(c.orgId, truncated)).body.code, 'GOV_ERR_ARCHIVE_CHECKSUM', 'a truncated archive')
      t.equal((await restore(c.orgId, 'not json\n')).body.code, 'GOV_ERR_ARCHIVE_INVALID', 'not an archive')
      const rewritten = forged(text, (x) => {
        x.sections.audit[1]!.data = { forged: true }
      })
      t.equal(
        (await restore(c.orgId, rewritten)).body.code,
        'GOV_ERR_ARCHIVE_INVALID',
        'an audit entry altered with recomputed checksums breaks the chain',
      )
      const invalidRecord = forged(text, (x) => {
        x.sections.records.at(-1)!.data = { title: 42 }
      })
      t.equal(
        (await restore(c.orgId, invalidRecord)).body.code,
        'KRN_ERR_VALIDATION_FAILED',
        "a record the collection's schema refuses",
      )
      const reserved = forged(text, (x) => {
        x.sections.records.find((r) => r.collection === 'contacts')!.data['$e:email'] = 'f1.x.y.z.w'
      })
      t.equal(
        (await restore(c.orgId, reserved)).body.code,
        'KRN_ERR_VALIDATION_FAILED',
        'a smuggled ciphertext key (the schema admits no such field)',
      )
      const wrongSecret = forged(text, (x) => {
        const i = x.sections.installations.find((i) => i.secretsSealed)!
        i.sourceId = '00000000-0000-0000-0000-000000000001'
      })
      t.equal(
        (await restore(c.orgId, wrongSecret)).body.code,
        'GOV_ERR_ARCHIVE_SECRETS_UNREADABLE',
        'sealed secrets open only for the installation they were sealed for',
      )
      await nothingIn(c.orgId)
      t.equal((await restore(b.orgId, text)).body.code, 'GOV_ERR_RESTORE_TARGET_NOT_EMPTY', 'not into a used tenant')
      t.equal((await restore(c.orgId, text, c.token)).body.code, 'AUTH_ERR_FORBIDDEN', 'not by a tenant admin')
      t.equal((await restore(c.orgId, text, a.token)).body.code, 'AUTH_ERR_FORBIDDEN', 'not by the source tenant')
      const missing = await restore('00000000-0000-0000-0000-0000000000ab', text)
      t.equal(missing.body.code, 'KRN_ERR_NOT_FOUND')
      await nothingIn(c.orgId)
      const ok = await restore(c.orgId, text)
      t.equal(ok.status, 200, 'the untouched archive still restores')
    })
  })
