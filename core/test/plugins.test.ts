import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildPlugin } from '@trellis/plugin-sdk'
import { DB_KINDS, startTestKernel, createTenantWithAdmin, addUser, type TestKernel } from './helpers/test-kernel.js'
import { eventually } from './helpers/receiver.js'
import { registerVersion, setVersionStatus } from './helpers/plugin-versions.js'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

const FIXTURES = join(import.meta.dirname, 'fixtures', 'plugins')

async function built(name: string) {
  const dir = join(FIXTURES, name)
  const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
  const b = await buildPlugin({ dir, write: false })
  return { manifest, code: b.code, sourceMap: b.sourceMap, sha256: b.sha256 }
}

const notes = await built('notes')
const relay = await built('relay')

// A local upstream for ctx.http.fetch; the relay plugin is granted exactly its host:port (the
// operator allow-listed 127.0.0.1). The cloud metadata address can no longer be granted; an
// installation granted it before that was checked is still stopped by the egress guard.
const upstream = createServer((req, res) => res.end(`hello ${req.headers['x-from'] ?? ''}`))
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
t.teardown(() => upstream.close())
const upstreamPort = (upstream.address() as AddressInfo).port
relay.manifest.capabilities.push(`http:fetch:127.0.0.1:${upstreamPort}`)

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'registered',
    (err: { code?: string }) => err.code ?? String(err),
  )

async function install(k: TestKernel, token: string, bundle: typeof notes, settings: Record<string, unknown> = {}) {
  const r = await k.req('POST', '/v1/installations', {
    token,
    body: {
      plugin: bundle.manifest.name,
      version: bundle.manifest.version,
      capabilities: bundle.manifest.capabilities,
      settings,
    },
  })
  if (r.status !== 201) throw new Error(`install: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

for (const kind of DB_KINDS) {
  t.test(`plugin host on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind, { plugins: { sandboxWorkers: 1 }, events: { egressAllow: ['127.0.0.1'] } })
    const a = await createTenantWithAdmin(k, `pl-a-${kind}`)
    const b = await createTenantWithAdmin(k, `pl-b-${kind}`)
    const partner = await k.req('POST', '/v1/partners', {
      token: k.adminToken,
      body: {
        name: 'Acme',
        slug: `acme-${kind}`,
        admin: { email: `dev@acme-${kind}.test`, name: 'Dev', password: 'password-of-acme-dev' },
      },
    })
    const partnerLogin = await k.login(`dev@acme-${kind}.test`, 'password-of-acme-dev')

    let notesVersionId = ''
    await t.test('registering a version: checked, loaded in the sandbox, never twice', async (t) => {
      t.equal(
        await codeOf(registerVersion(k, { ...notes, manifest: { ...notes.manifest, name: 'no-scope' } })),
        'PLG_ERR_BUNDLE_INVALID',
      )
      t.equal(
        await codeOf(registerVersion(k, { ...notes, sha256: '0'.repeat(64) })),
        'PLG_ERR_BUNDLE_INVALID',
        'a bundle that does not hash to the stated digest',
      )
      const mismatch = {
        ...notes,
        manifest: {
          ...notes.manifest,
          version: '1.0.1',
          routes: [...notes.manifest.routes, { method: 'GET', path: '/missing' }],
        },
      }
      t.equal(
        await codeOf(registerVersion(k, mismatch)),
        'PLG_ERR_BUNDLE_INVALID',
        'a route the bundle does not serve is refused',
      )
      t.equal(
        await codeOf(
          registerVersion(k, {
            ...notes,
            manifest: { ...notes.manifest, version: '1.0.2' },
            code: 'throw new Error("boom")',
          }),
        ),
        'PLG_ERR_BUNDLE_INVALID',
        'a bundle that does not load is refused',
      )
      const v = await registerVersion(k, { ...notes, publisherId: partner.body.id })
      notesVersionId = v.id
      t.equal(v.sha256, notes.sha256)
      t.equal(v.status, 'approved')
      t.equal(await codeOf(registerVersion(k, notes)), 'PLG_ERR_VERSION_EXISTS')
      await registerVersion(k, relay)
      const pending = await registerVersion(
        k,
        { ...notes, manifest: { ...notes.manifest, version: '1.1.0' } },
        'in_review',
      )
      const notApproved = await k.req('POST', '/v1/installations', {
        token: b.token,
        body: { plugin: '@acme/notes', version: pending.version, capabilities: notes.manifest.capabilities },
      })
      t.equal(notApproved.body.code, 'PLG_ERR_VERSION_NOT_APPROVED', 'a version under review cannot be installed')
      const rows = await k.ownerSql(`select count(*)::int as n from plugin_versions`)
      t.equal(rows[0].n, 3, 'refused uploads left nothing behind')
      t.equal(
        (await k.req('POST', '/v1/plugins/versions', { token: k.adminToken, body: notes })).status,
        404,
        'there is no direct upload route: versions come through the marketplace',
      )
    })

    let installationId = ''
    await t.test('installing needs consent to exactly what the version requests, and valid settings', async (t) => {
      const base = { plugin: '@acme/notes', version: '1.0.0', capabilities: notes.manifest.capabilities }
      const less = await k.req('POST', '/v1/installations', {
        token: a.token,
        body: { ...base, capabilities: ['data'] },
      })
      t.equal(less.body.code, 'PLG_ERR_CONSENT_MISMATCH')
      const badSettings = await k.req('POST', '/v1/installations', {
        token: a.token,
        body: { ...base, settings: { greeting: 42 } },
      })
      t.equal(badSettings.body.code, 'PLG_ERR_SETTINGS_INVALID')
      const member = await addUser(k, a.token, `member@pl-a-${kind}.test`, 'tenant_member')
      t.equal((await k.req('POST', '/v1/installations', { token: member.token, body: base })).status, 403)
      const otherTenant = await k.req('POST', `/v1/installations?tenantId=${b.orgId}`, { token: a.token, body: base })
      t.equal(otherTenant.status, 404, 'a tenant admin cannot install into another tenant')
      t.equal(
        (await k.ownerSql(`select count(*)::int as n from plugin_installations`))[0].n,
        0,
        'nothing was installed',
      )
      const inst = await install(k, a.token, notes, { greeting: 'hello', apiToken: 's3cret-token' })
      installationId = inst.id
      t.equal(inst.mount, 'notes')
      t.same(inst.settings, { greeting: 'hello' })
      t.same(inst.secrets, ['apiToken'])
      t.notOk(JSON.stringify(inst).includes('s3cret-token'), 'secrets are never returned')
      const [stored] = await k.ownerSql(`select secrets_enc from plugin_installations where id = ?`, [inst.id])
      t.notOk(stored.secrets_enc.includes('s3cret'), 'secrets are encrypted at rest')
      t.equal(
        (await k.req('POST', '/v1/installations', { token: a.token, body: base })).body.code,
        'PLG_ERR_ALREADY_INSTALLED',
      )
      const idx = await k.ownerSql(
        `select indexdef from pg_indexes where tablename = 'plugin_records' and indexdef like '%@acme/notes%'`,
      )
      t.equal(idx.length, 1, 'the declared index exists')
      const audit = await k.ownerSql(
        `select action, data from audit_log where tenant_id = ? and action = 'plugin.installed'`,
        [a.orgId],
      )
      t.same(audit[0].data.capabilities, notes.manifest.capabilities, 'the consent is audited')
    })

    let noteId = ''
    await t.test('routes answer for the tenant that installed the plugin, and 404 for others', async (t) => {
      const created = await k.req('POST', '/v1/x/notes/notes', {
        token: a.token,
        body: { title: 'First', tags: ['x'] },
      })
      t.equal(created.status, 201, JSON.stringify(created.body))
      t.equal(created.body.title, 'First')
      t.equal(created.body.version, 1)
      t.equal(created.headers.location, `/notes/${created.body.id}`)
      t.notOk(created.headers['set-cookie'], 'a plugin cannot set cookies on the API origin')
      noteId = created.body.id
      const got = await k.req('GET', `/v1/x/notes/notes/${noteId}`, { token: a.token })
      t.equal(got.body.title, 'First')
      const byName = await k.req('GET', `/v1/x/@acme/notes/notes/${noteId}`, { token: a.token })
      t.equal(byName.body.id, noteId, 'the full name works as a mount too')
      const other = await k.req('GET', `/v1/x/notes/notes/${noteId}`, { token: b.token })
      t.equal(other.status, 404)
      t.equal(other.body.code, 'PLG_ERR_NOT_INSTALLED')
      t.equal((await k.req('GET', `/v1/x/notes/nowhere`, { token: a.token })).body.code, 'KRN_ERR_ROUTE_NOT_FOUND')
      t.equal((await k.req('GET', `/v1/x/notes/notes`)).status, 401, 'plugin routes need a caller')
    })

    await t.test("another tenant with the same plugin sees none of the first one's records", async (t) => {
      await install(k, b.token, notes)
      const other = await k.req('GET', `/v1/x/notes/notes/${noteId}`, { token: b.token })
      t.equal(other.status, 404)
      t.same(other.body, { error: 'no such note' })
      const list = await k.req('GET', `/v1/x/notes/notes`, { token: b.token })
      t.same(list.body.items, [])
    })

    await t.test('manifest permissions, request and response schemas are enforced by the kernel', async (t) => {
      const member = await k.login(`member@pl-a-${kind}.test`, `password-of-member@pl-a-${kind}.test`)
      const forbidden = await k.req('POST', '/v1/x/notes/notes', { token: member.token, body: { title: 'no' } })
      t.equal(forbidden.status, 403)
      t.equal(forbidden.body.code, 'AUTH_ERR_FORBIDDEN')
      const invalid = await k.req('POST', '/v1/x/notes/notes', { token: a.token, body: { title: 'x', extra: true } })
      t.equal(invalid.status, 400)
      t.equal(invalid.body.code, 'KRN_ERR_VALIDATION_FAILED')
      t.same(
        invalid.body.problems,
        [
          {
            in: 'body',
            pointer: '',
            message: 'must NOT have additional properties',
            field: 'extra',
            allowedValues: ['fail', 'tags', 'title'],
          },
        ],
        'the problems come with pointers, the field and the fields allowed',
      )
      const bad = await k.req('GET', '/v1/x/notes/bad-response', { token: a.token })
      t.equal(bad.status, 502)
      t.equal(bad.body.code, 'PLG_ERR_RESPONSE_INVALID')
      const count = await k.ownerSql(`select count(*)::int as n from plugin_records where tenant_id = ?`, [a.orgId])
      t.equal(count[0].n, 1, 'refused requests wrote nothing')
    })

    await t.test(
      'tenant admins can grant the permissions installed plugins contribute, and nothing else',
      async (t) => {
        const role = await k.req('POST', '/v1/roles', {
          token: a.token,
          body: { name: 'note-writer', permissions: ['notes.write', 'users.read'] },
        })
        t.equal(role.status, 201, JSON.stringify(role.body))
        const writer = await addUser(k, a.token, `writer@pl-a-${kind}.test`, 'note-writer')
        const created = await k.req('POST', '/v1/x/notes/notes', {
          token: writer.token,
          body: { title: 'By a writer' },
        })
        t.equal(created.status, 201)
        const foreign = await k.req('POST', '/v1/roles', {
          token: a.token,
          body: { name: 'sneaky', permissions: ['relay.admin'] },
        })
        t.equal(foreign.body.code, 'AUTH_ERR_PERMISSION_ESCALATION', 'a permission no installed plugin contributes')
        const inB = await k.req('POST', '/v1/roles', {
          token: b.token,
          body: { name: 'note-writer', permissions: ['notes.write'] },
        })
        t.equal(inB.status, 201, 'B installed the plugin too')
        await k.ownerSql(`delete from plugin_records where data->>'title' = 'By a writer'`)
      },
    )

    await t.test('one transaction per invocation: a failing route leaves no record and no event', async (t) => {
      const before = await k.ownerSql(
        `select count(*)::int as n from events where tenant_id = ? and source = '@acme/notes'`,
        [a.orgId],
      )
      const failed = await k.req('POST', '/v1/x/notes/notes', { token: a.token, body: { title: 'Doomed', fail: true } })
      t.equal(failed.status, 502)
      t.equal(failed.body.code, 'SBX_ERR_PLUGIN_ERROR')
      t.same(
        await k.ownerSql(`select id from plugin_records where data->>'title' = 'Doomed'`),
        [],
        'the insert rolled back',
      )
      const after = await k.ownerSql(
        `select count(*)::int as n from events where tenant_id = ? and source = '@acme/notes'`,
        [a.orgId],
      )
      t.equal(after[0].n, before[0].n, 'the event rolled back with it')
    })

    await t.test("plugin events reach the tenant's feed and the plugin's own handler", async (t) => {
      const feed = await k.req('GET', '/v1/events?type=notes.note.created', { token: a.token })
      const mine = feed.body.items.filter((e: any) => e.data.noteId === noteId)
      t.equal(mine.length, 1)
      t.equal(mine[0].source, '@acme/notes')
      t.equal(mine[0].subject, noteId)
      await eventually(async () => {
        const got = await k.req('GET', `/v1/x/notes/notes/${noteId}`, { token: a.token })
        return got.body.seen === true
      })
      t.pass('the subscribed handler marked the note seen')
      const bFeed = await k.req('GET', '/v1/events?type=notes.note.created', { token: b.token })
      t.equal(bFeed.body.items.length, 0, 'tenant B saw none of it')
    })

    await t.test('ctx: caller, settings, secrets', async (t) => {
      const who = await k.req('GET', '/v1/x/notes/whoami', { token: a.token })
      t.equal(who.body.tenant, a.orgId)
      t.equal(who.body.caller.kind, 'user')
      t.ok(
        who.body.caller.permissions.includes('notes.write'),
        'a tenant admin holds the permissions the plugin contributes',
      )
      t.same(who.body.settings, { greeting: 'hello' })
      t.equal(who.body.token, 's3cret-token')
      const patched = await k.req('PATCH', `/v1/installations/${installationId}`, {
        token: a.token,
        body: { settings: { greeting: 'hi', apiToken: null } },
      })
      t.equal(patched.status, 200)
      t.same(patched.body.secrets, [])
      const again = await k.req('GET', '/v1/x/notes/whoami', { token: a.token })
      t.same([again.body.settings, again.body.token], [{ greeting: 'hi' }, null])
      const off = await k.req('PATCH', `/v1/installations/${installationId}`, {
        token: a.token,
        body: { status: 'disabled' },
      })
      t.equal(off.body.status, 'disabled')
      const refused = await k.req('GET', '/v1/x/notes/whoami', { token: a.token })
      t.equal(refused.status, 403)
      t.equal(refused.body.code, 'PLG_ERR_INSTALLATION_DISABLED', 'a disabled installation stops serving at once')
      await k.req('PATCH', `/v1/installations/${installationId}`, { token: a.token, body: { status: 'active' } })
      t.equal((await k.req('GET', '/v1/x/notes/whoami', { token: a.token })).status, 200)
      const toggles = await k.ownerSql(
        `select action from audit_log where tenant_id = ? and action in ('plugin.disabled', 'plugin.enabled') order by id`,
        [a.orgId],
      )
      t.same(
        toggles.map((r: any) => r.action),
        ['plugin.disabled', 'plugin.enabled'],
      )
    })

    await t.test(
      "actions between plugins: only with the capability, only the same tenant's installation",
      async (t) => {
        const absent = await k.req('GET', '/v1/x/relay/count', { token: a.token })
        t.equal(absent.body.code, 'PLG_ERR_NOT_INSTALLED', 'relay is not installed for A yet')
        await install(k, a.token, relay)
        const noDependency = await k.req('POST', '/v1/installations', {
          token: b.token,
          body: { plugin: '@acme/relay', version: '1.0.0', capabilities: relay.manifest.capabilities },
        })
        t.equal(noDependency.status, 201, 'B has @acme/notes installed, so relay installs')
        const count = await k.req('GET', '/v1/x/relay/count?tag=x', { token: a.token })
        t.same(count.body, { count: 1 })
      },
    )

    await t.test('ctx.http.fetch reaches granted hosts only, through the egress guard', async (t) => {
      const ok = await k.req(
        'GET',
        `/v1/x/relay/fetch?url=${encodeURIComponent(`http://127.0.0.1:${upstreamPort}/hi`)}`,
        { token: a.token },
      )
      t.same(ok.body, { status: 200, text: 'hello relay' })
      const otherPort = await k.req('GET', `/v1/x/relay/fetch?url=${encodeURIComponent('http://127.0.0.1:1/')}`, {
        token: a.token,
      })
      t.same(otherPort.body, { error: 'KRN_ERR_CAPABILITY_DENIED' }, 'another port of the same host is not granted')
      await registerVersion(k, {
        ...relay,
        manifest: {
          ...relay.manifest,
          version: '1.0.1',
          capabilities: [...relay.manifest.capabilities, 'http:fetch:169.254.169.254'],
        },
      })
      const metadataRefused = await k.req('POST', '/v1/installations', {
        token: b.token,
        body: {
          plugin: '@acme/relay',
          version: '1.0.1',
          capabilities: [...relay.manifest.capabilities, 'http:fetch:169.254.169.254'],
        },
      })
      t.equal(
        metadataRefused.body.code,
        'PLG_ERR_CAPABILITY_NOT_GRANTABLE',
        'a version asking for the metadata address is never granted',
      )
      // An installation granted the metadata address before grants were checked:
      await k.ownerSql(
        `update plugin_installations set capabilities = array_append(capabilities, 'http:fetch:169.254.169.254') where tenant_id = ? and plugin = '@acme/relay'`,
        [a.orgId],
      )
      k.kernel.ctx.plugins.forgetTenant(a.orgId)
      const metadata = await k.req(
        'GET',
        `/v1/x/relay/fetch?url=${encodeURIComponent('http://169.254.169.254/latest/meta-data')}`,
        { token: a.token },
      )
      t.same(
        metadata.body,
        { error: 'EVT_ERR_EGRESS_DENIED' },
        'a granted host on a link-local address is still refused',
      )
      const decimal = await k.req('GET', `/v1/x/relay/fetch?url=${encodeURIComponent('http://2852039166/')}`, {
        token: a.token,
      })
      t.same(
        decimal.body,
        { error: 'EVT_ERR_EGRESS_DENIED' },
        'a decimal spelling of the metadata address is refused all the same',
      )
    })

    await t.test('capability misuse is refused with a stable code, and audited', async (t) => {
      const tried = await k.req('GET', '/v1/x/relay/sneak', { token: a.token })
      t.equal(tried.status, 200, JSON.stringify(tried.body))
      t.equal(tried.body.fetch, 'KRN_ERR_CAPABILITY_DENIED')
      t.equal(tried.body.emit, 'KRN_ERR_CAPABILITY_DENIED')
      t.equal(tried.body.secrets, 'KRN_ERR_CAPABILITY_DENIED')
      t.equal(tried.body.call, 'KRN_ERR_CAPABILITY_DENIED')
      t.not(tried.body.data, 'allowed')
      const denied = await k.ownerSql(
        `select actor_kind, actor_id, data from audit_log where tenant_id = ? and action = 'plugin.capability.denied' order by id`,
        [a.orgId],
      )
      t.ok(denied.length >= 4, 'each refusal is audited')
      t.same([denied[0].actor_kind, denied[0].actor_id], ['plugin', '@acme/relay'])
      const used = await k.ownerSql(
        `select data from audit_log where tenant_id = ? and action = 'plugin.capability.used' and actor_id = '@acme/relay'`,
        [a.orgId],
      )
      t.ok(
        used.some((u: any) =>
          u.data.uses.some((x: any) => x.op === 'plugins.call' && x.target === '@acme/notes#count'),
        ),
        'uses are audited with what was done',
      )
    })

    await t.test('invocation records: the tenant admin sees everything, the publisher no tenant data', async (t) => {
      const mine = await k.req('GET', `/v1/installations/${installationId}/invocations`, { token: a.token })
      t.equal(mine.status, 200)
      const failed = mine.body.items.find((i: any) => i.outcome === 'error')
      t.ok(failed, 'the failed invocation is recorded')
      t.equal(failed.errorCode, 'SBX_ERR_PLUGIN_ERROR')
      const ok = mine.body.items.find((i: any) => i.entryName === 'POST /notes' && i.outcome === 'ok')
      t.ok(ok.wallMs > 0)
      t.ok(ok.hostCalls >= 2)
      t.equal(ok.logs[0].message, 'note created')
      t.equal(
        (await k.req('GET', `/v1/installations/${installationId}/invocations`, { token: b.token })).status,
        404,
        'another tenant cannot read them',
      )
      const pub = await k.req('GET', '/v1/plugins/@acme/notes/invocations', { token: partnerLogin.token })
      t.equal(pub.status, 200)
      t.ok(pub.body.items.length >= 3, 'the publisher sees invocations across tenants')
      t.notOk(JSON.stringify(pub.body).includes(a.orgId), 'without tenant ids')
      t.notOk(JSON.stringify(pub.body).includes('note created'), 'without log lines')
      t.equal(
        (await k.req('GET', '/v1/plugins/@acme/relay/invocations', { token: partnerLogin.token })).status,
        404,
        "not another publisher's plugin",
      )
    })

    await t.test(
      'upgrades wait for consent when they ask for more; rollbacks go back; dependencies hold',
      async (t) => {
        const withCaps = (version: string, extra: string[] = []) => ({
          ...notes,
          manifest: { ...notes.manifest, version, capabilities: [...notes.manifest.capabilities, ...extra] },
        })
        await registerVersion(k, withCaps('1.0.5'))
        await registerVersion(k, withCaps('1.2.0', ['http:fetch:api.example.com']))
        const [bInst] = (await k.req('GET', '/v1/installations', { token: b.token })).body.items.filter(
          (i: any) => i.plugin === '@acme/notes',
        )
        const upgrade = (version: string, token = b.token) =>
          k.req('POST', `/v1/installations/${bInst.id}/upgrade`, { token, body: { version } })
        t.equal((await upgrade('1.1.0')).body.code, 'PLG_ERR_VERSION_NOT_APPROVED', 'a version under review')
        t.equal(
          (await k.req('POST', `/v1/installations/${bInst.id}/upgrade`, { token: a.token, body: { version: '1.0.5' } }))
            .status,
          404,
          'not from another tenant',
        )
        const same = await upgrade('1.0.5')
        t.equal(same.status, 200, JSON.stringify(same.body))
        t.equal(same.body.version, '1.0.5', 'no new capability: upgraded at once')
        t.same(
          same.body.history.map((h: any) => h.version),
          ['1.0.0'],
        )
        const more = await upgrade('1.2.0')
        t.equal(more.status, 202)
        t.same(more.body.capabilities, { added: ['http:fetch:api.example.com'], removed: [] })
        const waiting = await k.req('GET', `/v1/installations/${bInst.id}`, { token: b.token })
        t.equal(waiting.body.version, '1.0.5', 'it keeps running the consented version')
        t.equal(waiting.body.pendingUpgrade.version, '1.2.0')
        const partial = await k.req('POST', `/v1/installations/${bInst.id}/consent`, {
          token: b.token,
          body: { capabilities: notes.manifest.capabilities },
        })
        t.equal(partial.body.code, 'PLG_ERR_CONSENT_MISMATCH')
        const consented = await k.req('POST', `/v1/installations/${bInst.id}/consent`, {
          token: b.token,
          body: { capabilities: [...notes.manifest.capabilities, 'http:fetch:api.example.com'] },
        })
        t.equal(consented.status, 200)
        t.equal(consented.body.version, '1.2.0')
        t.ok(consented.body.capabilities.includes('http:fetch:api.example.com'))
        t.equal(consented.body.pendingUpgrade, null)
        t.equal((await upgrade('1.0.5')).body.code, 'PLG_ERR_NOT_AN_UPGRADE')
        const back = await k.req('POST', `/v1/installations/${bInst.id}/rollback`, { token: b.token, body: {} })
        t.equal(back.body.version, '1.0.5')
        const first = await k.req('POST', `/v1/installations/${bInst.id}/rollback`, {
          token: b.token,
          body: { version: '1.0.0' },
        })
        t.equal(first.body.version, '1.0.0')
        t.same(first.body.capabilities, notes.manifest.capabilities)
        t.equal(
          (await k.req('POST', `/v1/installations/${bInst.id}/rollback`, { token: b.token, body: {} })).body.code,
          'PLG_ERR_NOTHING_TO_ROLL_BACK',
        )
        t.equal((await k.req('GET', `/v1/x/notes/notes`, { token: b.token })).status, 200, 'it serves after all that')
        const events = await k.ownerSql(
          `select type from events where tenant_id = ? and type like 'marketplace.installation.%' order by id`,
          [b.orgId],
        )
        t.same(
          events.map((e: any) => e.type),
          [
            'marketplace.installation.created',
            'marketplace.installation.created',
            'marketplace.installation.upgraded',
            'marketplace.installation.upgrade_pending',
            'marketplace.installation.upgraded',
            'marketplace.installation.rolled_back',
            'marketplace.installation.rolled_back',
          ],
        )
        const audit = await k.ownerSql(
          `select action from audit_log where tenant_id = ? and action in ('plugin.upgraded', 'plugin.upgrade_pending', 'plugin.rolled_back') order by id`,
          [b.orgId],
        )
        t.same(
          audit.map((r: any) => r.action),
          ['plugin.upgraded', 'plugin.upgrade_pending', 'plugin.upgraded', 'plugin.rolled_back', 'plugin.rolled_back'],
        )
      },
    )

    await t.test('the OpenAPI document shows plugin routes with their schemas', async (t) => {
      const spec = await k.req('GET', '/openapi.json')
      const op = spec.body.paths['/v1/x/notes/notes']?.post
      t.ok(op, 'the route is documented')
      t.equal(op.requestBody.content['application/json'].schema.required[0], 'title')
      t.ok(spec.body.paths['/v1/x/notes/notes/{id}']?.get)
    })

    await t.test('a blocked version stops serving at once; uninstall without keeping data deletes it', async (t) => {
      await setVersionStatus(k, notesVersionId, 'blocked')
      const blocked = await k.req('GET', `/v1/x/notes/notes/${noteId}`, { token: a.token })
      t.equal(blocked.body.code, 'PLG_ERR_VERSION_BLOCKED')
      await setVersionStatus(k, notesVersionId, 'approved')
      t.equal((await k.req('GET', `/v1/x/notes/notes/${noteId}`, { token: a.token })).status, 200)
      const dependedOn = await k.req('DELETE', `/v1/installations/${installationId}?keepData=false`, { token: a.token })
      t.equal(dependedOn.body.code, 'PLG_ERR_DEPENDED_ON', '@acme/relay depends on it')
      const gone = await k.req('DELETE', `/v1/installations/${installationId}?keepData=false&force=true`, {
        token: a.token,
      })
      t.equal(gone.status, 204)
      const orphan = await k.req('GET', '/v1/x/relay/count', { token: a.token })
      t.equal(orphan.status, 404, 'an error the plugin does not catch reaches the caller as it is')
      t.equal(orphan.body.code, 'PLG_ERR_NOT_INSTALLED')
      t.equal(
        (await k.req('GET', `/v1/x/notes/notes/${noteId}`, { token: a.token })).body.code,
        'PLG_ERR_NOT_INSTALLED',
      )
      t.same(
        await k.ownerSql(`select id from plugin_records where tenant_id = ? and plugin = '@acme/notes'`, [a.orgId]),
        [],
        'its records are gone',
      )
      const bStill = await k.ownerSql(`select plugin from plugin_installations where tenant_id = ? order by plugin`, [
        b.orgId,
      ])
      t.same(
        bStill.map((r: any) => r.plugin),
        ['@acme/notes', '@acme/relay'],
        'tenant B keeps its installations',
      )
    })
  })
}
