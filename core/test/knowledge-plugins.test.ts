// ctx.knowledge from sandboxed plugin code: search and ask see exactly what the invoking user
// may read (own tenant only, approved current documents, the user's roles), write adds a draft
// that nobody retrieves until a person approves it, every use is audited, and a plugin without
// the capabilities is refused — plus the same calls through the SDK's in-memory test host.
import t from 'tap'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { buildPlugin, createTestHost, definePlugin, type PluginContext } from '@trellis/plugin-sdk'
import { DB_KINDS, addUser, createTenantWithAdmin, startTestKernel, type TestKernel } from './helpers/test-kernel.js'
import { registerVersion } from './helpers/plugin-versions.js'

async function fixture(name: string) {
  const dir = join(import.meta.dirname, 'fixtures', 'plugins', name)
  const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
  const built = await buildPlugin({ dir, write: false })
  return { manifest, code: built.code, sourceMap: built.sourceMap }
}
const helper = await fixture('knowledge-helper')
const ungranted = await fixture('knowledge-ungranted')

async function install(k: TestKernel, token: string, bundle: { manifest: { name: string; version: string } }) {
  const m = bundle.manifest as { name: string; version: string; capabilities: string[] }
  const r = await k.req('POST', '/v1/installations', {
    token,
    body: { plugin: m.name, version: m.version, capabilities: m.capabilities },
  })
  if (r.status !== 201) throw new Error(JSON.stringify(r.body))
  return r.body as { id: string }
}

const POLICY = `# Returns policy

## Return window

Customers may return unused goods within 30 days of delivery, in their original packaging.
`
const CREDIT = `# Credit rules

## Large limits

Credit limits above 50000 euros need the approval of the chief financial officer.
`
const DRAFT = `# Unreleased pricing

## Spring plan

The unreleased spring plan lowers the freight surcharge to 4 euros per parcel.
`
const OTHER = `# Rebates

## Tenant B rebates

Tenant B grants its buying group a confidential rebate of 9 percent on freight.
`

for (const kind of DB_KINDS)
  t.test(`ctx.knowledge on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind, { plugins: { sandboxWorkers: 1 } })
    await registerVersion(k, helper)
    await registerVersion(k, ungranted)
    const a = await createTenantWithAdmin(k, `kp-a-${kind}`)
    const member = await addUser(k, a.token, `member@kp-a-${kind}.test`, 'tenant_member')
    const b = await createTenantWithAdmin(k, `kp-b-${kind}`)
    const inst = await install(k, a.token, helper)
    await install(k, b.token, helper)

    const kbPost = (token: string, url: string, body: unknown = {}) =>
      k.req('POST', `/v1/knowledge${url}`, { token, body })
    const addDoc = async (token: string, kb: string, title: string, content: string, roles?: string[]) => {
      const d = await kbPost(token, `/${kb}/documents`, {
        title,
        source: `${title}.md`,
        format: 'markdown',
        content,
        ...(roles ? { roles } : {}),
      })
      if (d.status !== 201) throw new Error(JSON.stringify(d.body))
      return d.body.id as string
    }
    const kbA = (await kbPost(a.token, '/bases', { slug: 'handbook', name: 'Handbook', supportRole: 'tenant_admin' }))
      .body.id as string
    const kbB = (await kbPost(b.token, '/bases', { slug: 'handbook', name: 'Handbook B' })).body.id as string
    const policy = await addDoc(a.token, kbA, 'Returns policy', POLICY)
    const credit = await addDoc(a.token, kbA, 'Credit rules', CREDIT, ['tenant_admin'])
    const draft = await addDoc(a.token, kbA, 'Unreleased pricing', DRAFT)
    const other = await addDoc(b.token, kbB, 'Rebates', OTHER)
    for (const id of [policy, credit]) await kbPost(a.token, `/${kbA}/documents/${id}/approve`)
    await kbPost(b.token, `/${kbB}/documents/${other}/approve`)

    const plugin = (token: string, route: string, body: unknown) =>
      k.req('POST', `/v1/x/@acme/knowledge-helper${route}`, { token, body })
    const docsOf = (r: { body: { items: Array<{ documentId: string }> } }) => r.body.items.map((p) => p.documentId)

    await t.test('search is trimmed to what the invoking user may read', async (t) => {
      const q = { kb: 'handbook', query: 'credit limits approval chief financial officer return goods days' }
      const forAdmin = await plugin(a.token, '/search', q)
      t.equal(forAdmin.status, 200, JSON.stringify(forAdmin.body))
      t.ok(docsOf(forAdmin).includes(policy))
      t.ok(docsOf(forAdmin).includes(credit), 'the admin reads the restricted rules')
      const forMember = await plugin(member.token, '/search', q)
      t.equal(forMember.status, 200)
      t.ok(docsOf(forMember).includes(policy))
      t.notOk(docsOf(forMember).includes(credit), 'a member never gets a passage for admins only')
      const drafts = await plugin(a.token, '/search', {
        kb: 'handbook',
        query: 'unreleased spring plan freight surcharge',
      })
      t.notOk(docsOf(drafts).includes(draft), 'a draft is never retrieved')
    })

    await t.test("another tenant's base and passages are out of reach", async (t) => {
      const byId = await plugin(a.token, '/search', { kb: kbB, query: 'confidential rebate freight' })
      t.same(byId.body, { code: 'KB_ERR_BASE_NOT_FOUND' })
      const ownSlug = await plugin(a.token, '/search', {
        kb: 'handbook',
        query: 'confidential rebate 9 percent freight',
      })
      t.notOk(docsOf(ownSlug).includes(other))
      const bSide = await plugin(b.token, '/search', { kb: 'handbook', query: 'return goods within 30 days' })
      t.notOk(docsOf(bSide).some((d) => d === policy || d === credit))
    })

    await t.test('ask: a cited answer after a data write in the same invocation, or an escalation', async (t) => {
      const r = await plugin(a.token, '/ask', {
        kb: 'handbook',
        question: 'How many days do customers have to return unused goods?',
        writeFirst: true,
      })
      t.equal(r.status, 200, JSON.stringify(r.body))
      t.equal(r.body.answered, true)
      t.match(r.body.text, /30 days/)
      t.equal(r.body.citations[0].documentId, policy)
      const notes = await k.ownerSql(
        `select count(*)::int as n from plugin_records where tenant_id = ? and collection = 'notes'`,
        [a.orgId],
      )
      t.equal(notes[0].n, 1, "the invocation's write committed with the answer")
      const forMember = await plugin(member.token, '/ask', {
        kb: 'handbook',
        question: 'Who must approve credit limits above 50000 euros?',
      })
      t.equal(forMember.body.answered, false, 'not from a passage the member may not read')
      t.notMatch(JSON.stringify(forMember.body), /chief financial officer/)
      t.ok(forMember.body.escalationId)
      const inbox = await k.req('GET', '/v1/knowledge/escalations', { token: a.token })
      t.ok(inbox.body.items.some((e: { id: string }) => e.id === forMember.body.escalationId))
      const records = await k.ownerSql(
        `select count(*)::int as n from ai_records where tenant_id = ? and installation_id = ?::uuid`,
        [a.orgId, inst.id],
      )
      t.ok(records[0].n >= 1, "the model call is recorded as the plugin's installation")
    })

    await t.test('write adds a draft that is retrieved only once a person approves it, audited', async (t) => {
      const content = '# Warranty\n\n## Term\n\nEvery refurbished pump carries a warranty of 18 months.'
      const w = await plugin(a.token, '/write', { kb: 'handbook', title: 'Warranty', content })
      t.equal(w.status, 200, JSON.stringify(w.body))
      t.equal(w.body.status, 'draft')
      t.equal(w.body.version, 1)
      const q = { kb: 'handbook', query: 'warranty refurbished pump months' }
      t.notOk(docsOf(await plugin(a.token, '/search', q)).includes(w.body.id), 'not while a draft')
      await kbPost(a.token, `/${kbA}/documents/${w.body.id}/approve`)
      t.ok(docsOf(await plugin(a.token, '/search', q)).includes(w.body.id), 'approved, it is retrieved')
      const audit = await k.ownerSql(
        `select actor_kind, actor_id, data from audit_log where tenant_id = ? and action = 'knowledge.document.added' and target_id = ?`,
        [a.orgId, w.body.id],
      )
      t.equal(audit.length, 1)
      t.equal(audit[0].actor_kind, 'plugin')
      t.equal(audit[0].actor_id, inst.id)
      const uses = await k.ownerSql(
        `select data from audit_log where tenant_id = ? and action = 'plugin.capability.used' order by at`,
        [a.orgId],
      )
      const ops = uses.flatMap((u: { data: { uses: Array<{ op: string; target: string }> } }) =>
        u.data.uses.map((x) => `${x.op} ${x.target}`),
      )
      t.ok(ops.includes('knowledge.search handbook') && ops.includes('knowledge.write handbook'))
      const intoB = await plugin(a.token, '/write', {
        kb: kbB,
        title: 'Planted',
        content: '# Planted\n\nPlanted text.',
      })
      t.same(intoB.body, { code: 'KB_ERR_BASE_NOT_FOUND' }, "never into another tenant's base")
      const bad = await plugin(a.token, '/write', { kb: 'handbook', title: 'Empty', content: '' })
      t.match(bad.body.code, /^KB_ERR_/, 'a document with no text is refused with a typed error')
      const written = await k.ownerSql(
        `select count(*)::int as n from knowledge_documents where tenant_id in (?, ?) and title in ('Planted', 'Empty')`,
        [a.orgId, b.orgId],
      )
      t.equal(written[0].n, 0, 'nothing half-written')
    })

    await t.test(
      "a partner's shared playbooks: its tenants' plugins read them, never write them; other partners' tenants never see them",
      async (t) => {
        const mkPartner = async (slug: string) => {
          const email = `pa@${slug}.test`
          const p = await k.req('POST', '/v1/partners', {
            token: k.adminToken,
            body: { name: slug, slug, admin: { email, name: 'PA', password: 'partner-admin-password' } },
          })
          if (p.status !== 201) throw new Error(JSON.stringify(p.body))
          return { id: p.body.id as string, token: (await k.login(email, 'partner-admin-password')).token }
        }
        const partner = await mkPartner(`kp-partner-${kind}`)
        const other = await mkPartner(`kp-other-${kind}`)
        const managed = await createTenantWithAdmin(k, `kp-managed-${kind}`, { partnerId: partner.id })
        const foreign = await createTenantWithAdmin(k, `kp-foreign-${kind}`, { partnerId: other.id })
        await install(k, managed.token, helper)
        await install(k, foreign.token, helper)
        const base = await kbPost(partner.token, '/bases', { slug: 'onboarding', name: 'Onboarding', shared: true })
        t.equal(base.status, 201, JSON.stringify(base.body))
        const playbook = await addDoc(
          partner.token,
          base.body.id,
          'Go-live playbook',
          '# Go-live\n\n## Cut-over\n\nFreeze the legacy ledger two days before go-live and import the opening balances.',
        )
        await kbPost(partner.token, `/${base.body.id}/documents/${playbook}/approve`)
        const q = { kb: 'onboarding', question: 'When do we freeze the legacy ledger before go-live?' }
        const asked = await plugin(managed.token, '/ask', q)
        t.equal(asked.body.answered, true, JSON.stringify(asked.body))
        t.equal(asked.body.citations[0].documentId, playbook)
        const write = await plugin(managed.token, '/write', {
          kb: 'onboarding',
          title: 'Planted',
          content: '# P\n\nPlanted.',
        })
        t.same(write.body, { code: 'KB_ERR_BASE_READ_ONLY' }, "a tenant's plugin never writes its partner's base")
        const foreignAsk = await plugin(foreign.token, '/search', {
          kb: base.body.id,
          query: 'freeze legacy ledger go-live',
        })
        t.same(foreignAsk.body, { code: 'KB_ERR_BASE_NOT_FOUND' }, "another partner's tenant never reaches it")
      },
    )

    await t.test('a plugin without the knowledge capabilities is refused each call', async (t) => {
      await install(k, a.token, ungranted)
      const r = await k.req('POST', '/v1/x/@acme/knowledge-ungranted/probe', {
        token: a.token,
        body: { kb: 'handbook' },
      })
      t.same(r.body, {
        search: 'KRN_ERR_CAPABILITY_DENIED',
        ask: 'KRN_ERR_CAPABILITY_DENIED',
        write: 'KRN_ERR_CAPABILITY_DENIED',
      })
      const asks = await k.ownerSql(
        `select count(*)::int as n from knowledge_asks where tenant_id = ? and question = 'anything?'`,
        [a.orgId],
      )
      t.equal(asks[0].n, 0)
    })
  })

t.test('the in-memory test host serves ctx.knowledge, trimmed by roles', async (t) => {
  const plugin = definePlugin({
    manifest: {
      name: '@acme/kb-user',
      version: '1.0.0',
      engines: { trellis: '^0.1.0' },
      capabilities: ['knowledge:search', 'knowledge:write'],
      routes: [{ method: 'POST', path: '/ask' }],
    },
    routes: {
      'POST /ask': async (req, ctx: PluginContext) => {
        const q = String((req.body as { q: string }).q)
        const answer = await ctx.knowledge.ask('rules', q)
        if (!answer.answered)
          await ctx.knowledge.write('rules', { title: 'Open question', source: 'q', format: 'text', content: q })
        return { status: 200, body: answer }
      },
    },
  })
  const bases = {
    rules: [
      { title: 'Returns', text: 'Customers return goods within 30 days.' },
      { title: 'Credit', text: 'Credit limits above 50000 need the CFO.', roles: ['finance'] },
    ],
  }
  const member = createTestHost(plugin, { knowledge: { bases } })
  const credit = await member.route('POST /ask', { body: { q: 'Who approves credit limits above 50000?' } })
  t.equal((credit.body as { answered: boolean }).answered, false)
  t.equal(member.knowledgeDrafts.length, 1, 'the open question was written as a draft')
  const finance = createTestHost(plugin, { knowledge: { bases, roles: ['finance'] } })
  const allowed = await finance.route('POST /ask', { body: { q: 'Who approves credit limits above 50000?' } })
  t.match((allowed.body as { text: string }).text, /CFO/)
  const denied = createTestHost(plugin, { capabilities: [], knowledge: { bases } })
  await t.rejects(denied.route('POST /ask', { body: { q: 'x' } }), { code: 'KRN_ERR_CAPABILITY_DENIED' })
})
