// The evidence pack (what an auditor receives, signed by the platform, and the attacks on it: a
// changed section, a swapped signature) and the periodic access review (a tenant's memberships and
// API keys not used for 90 days, by the kernel's clock, kept or removed by its admin).
import t from 'tap'
import { DB_KINDS, addUser, createTenantWithAdmin, startTestKernel } from './helpers/test-kernel.js'
import { builtFixture, registerVersion } from './helpers/plugin-versions.js'
import { ManualClock } from '../src/workflows/clock.js'
import { orgTx } from '../src/kernel-context.js'
import { appendAudit } from '../src/audit/audit-log.js'
import { PLATFORM_ORG } from '../src/db/database.js'
import { readArchive } from '../src/governance/index.js'
import { trellisInProcess } from './helpers/cli-in-process.js'
import { eventually } from './helpers/receiver.js'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const DAY = 86_400_000
const contacts = await builtFixture('contacts')

for (const kind of DB_KINDS)
  t.test(`evidence and access review on ${kind}`, async (t) => {
    const clock = new ManualClock(Date.now())
    const secretKey = randomBytes(32).toString('hex')
    const k = await startTestKernel(t, kind, {
      plugins: { sandboxWorkers: 1 },
      workflows: { clock },
      env: { TRELLIS_SECRET_KEY: secretKey },
    })
    const version = await registerVersion(k, contacts)
    // What the marketplace's review writes beside a version it decides (core runs without the marketplace).
    await k.ownerSql(
      `update plugin_versions set review = jsonb_build_object('decision', 'approved', 'reason', 'fields classified, no egress',
         'reviewer', jsonb_build_object('kind', 'user', 'id', 'reviewer-1'), 'at', now()) where name = '@acme/contacts'`,
    )
    const a = await createTenantWithAdmin(k, 'evidence-a')
    const b = await createTenantWithAdmin(k, 'evidence-b')
    const installed = await k.req('POST', '/v1/installations', {
      token: a.token,
      body: { plugin: '@acme/contacts', version: '1.0.0', capabilities: contacts.manifest.capabilities },
    })
    t.equal(installed.status, 201, JSON.stringify(installed.body))
    const member = await addUser(k, a.token, 'clerk@evidence-a.test', 'tenant_member')
    await addUser(k, b.token, 'someone@evidence-b.test', 'tenant_member')
    const created = await k.req('POST', '/v1/api-keys', {
      token: a.token,
      body: { name: 'erp-sync', permissions: ['users.read'] },
    })
    t.equal(created.status, 201, JSON.stringify(created.body))
    const apiKey = created.body.key as string
    t.equal((await k.req('GET', '/v1/users', { token: apiKey })).status, 200)
    // The key's use is recorded off the request path: wait for it.
    await eventually(async () => {
      const [row] = await k.ownerSql('select last_used_at from api_keys where id = ?::uuid', [created.body.id])
      return row?.last_used_at !== null
    })
    // What the marketplace's kill switch writes into each affected tenant's chain.
    await orgTx(k.kernel.ctx, a.orgId, (tx) =>
      appendAudit(tx, a.orgId, {
        actor: { kind: 'user', id: 'platform-admin' },
        action: 'marketplace.version.blocked',
        target: { kind: 'plugin_version', id: version.id },
        data: { plugin: '@acme/contacts', version: '1.0.0', reason: 'leaks contacts' },
      }),
    )

    // The kernel's clock has not moved since the kernel started: the period names real time explicitly.
    const period = `?from=${new Date(Date.now() - DAY).toISOString()}&to=${new Date(Date.now() + DAY).toISOString()}`
    const evidence = (token: string, query = period) => k.req('GET', `/v1/compliance/evidence${query}`, { token })
    const verify = (body: unknown, token = a.token) => k.req('POST', '/v1/compliance/evidence/verify', { token, body })
    const pack = await evidence(a.token)

    await t.test("a tenant's pack holds what an auditor asks for", async (t) => {
      t.equal(pack.status, 200, JSON.stringify(pack.body).slice(0, 500))
      const p = pack.body.pack
      t.match(p.scope, { kind: 'tenant', orgId: a.orgId, name: 'evidence-a' })
      t.same(
        p.accessReview.members.map((m: { email: string; role: string }) => `${m.email}:${m.role}`),
        ['admin@evidence-a.test:tenant_admin', 'clerk@evidence-a.test:tenant_member'],
        'who holds which role — and nobody of another tenant',
      )
      t.ok(
        p.accessReview.members.every((m: { lastSignIn: string | null }) => m.lastSignIn),
        'with their last sign-in',
      )
      const key = p.accessReview.apiKeys.find((x: { id: string }) => x.id === created.body.id)
      t.match(key, { name: 'erp-sync', permissions: ['users.read'], revokedAt: null })
      t.ok(key.lastUsedAt, "the key's last use")
      t.match(p.marketplaceDecisions, [
        { plugin: '@acme/contacts', version: '1.0.0', decision: 'approved', reason: 'fields classified, no egress' },
      ])
      t.same(p.capabilityConsents.installations, [
        { plugin: '@acme/contacts', version: '1.0.0', capabilities: contacts.manifest.capabilities, status: 'active' },
      ])
      t.match(p.capabilityConsents.changes, [{ action: 'plugin.installed', data: { plugin: '@acme/contacts' } }])
      t.match(p.killSwitch, [{ action: 'marketplace.version.blocked', data: { reason: 'leaks contacts' } }])
      t.equal(p.retentionRuns.available, true, 'retention runs are a section of their own')
      t.ok(Array.isArray(p.retentionRuns.runs))
      t.equal(p.auditChain.verification.ok, true, 'the chain verifies')
      const [head] = await k.ownerSql<{ seq: string; hash: string }>(
        'select seq::text as seq, hash from audit_log where tenant_id = ?::uuid and seq = ?::bigint',
        [a.orgId, p.auditChain.verification.head.seq],
      )
      t.equal(head!.hash, p.auditChain.verification.head.hash, 'with its head')
      t.match(p.configuration, { database: kind === 'postgres' ? 'postgresql' : 'embedded' })
      t.match(pack.body.signature, { alg: 'EdDSA', kid: String, sha256: /^[0-9a-f]{64}$/ })
      const [generated] = await k.ownerSql<{ data: { sha256: string } }>(
        `select data from audit_log where tenant_id = ?::uuid and action = 'governance.evidence.generated'`,
        [a.orgId],
      )
      t.equal(generated!.data.sha256, pack.body.signature.sha256, 'generating a pack is audited')
    })

    await t.test('the signature verifies, and fails once anything in the pack changes', async (t) => {
      t.match((await verify(pack.body)).body, { valid: true, sha256: pack.body.signature.sha256 })
      const tampered = structuredClone(pack.body)
      tampered.pack.accessReview.members[1].role = 'tenant_admin'
      const r = await verify(tampered)
      t.equal(r.body.valid, false, 'a role changed after signing')
      t.match(r.body.reason, /altered/)
      const dropped = structuredClone(pack.body)
      dropped.pack.killSwitch = []
      t.equal((await verify(dropped)).body.valid, false, 'a section emptied')
      const other = await evidence(b.token)
      const swapped = { pack: pack.body.pack, signature: other.body.signature }
      t.equal((await verify(swapped)).body.valid, false, "another pack's signature")
      const forged = structuredClone(pack.body)
      const [h, , s] = forged.signature.jws.split('.')
      forged.signature.jws = `${h}.${Buffer.from(JSON.stringify({ sha256: 'x' })).toString('base64url')}.${s}`
      t.equal((await verify(forged)).body.valid, false, 'a forged signature')
      t.equal((await verify({ pack: {}, signature: {} })).body.valid, false, 'not a pack')
    })

    await t.test('who may ask, and for what period', async (t) => {
      t.equal((await evidence(member.token)).body.code, 'AUTH_ERR_FORBIDDEN', 'a member without audit.read')
      t.equal((await k.req('GET', '/v1/compliance/evidence')).body.code, 'AUTH_ERR_UNAUTHENTICATED')
      for (const q of ['?from=2026-02-01&to=2026-01-01', '?from=yesterday', '?from=2020-01-01&to=2026-01-01'])
        t.equal((await evidence(a.token, q)).body.code, 'GOV_ERR_EVIDENCE_RANGE', q)
      const old = await evidence(a.token, '?from=2020-01-01&to=2020-06-01')
      t.same(old.body.pack.killSwitch, [], 'a period before anything happened holds no events')
      t.same(old.body.pack.period, { from: '2020-01-01T00:00:00.000Z', to: '2020-06-01T00:00:00.000Z' })
    })

    await t.test("the platform's pack names every chain's head", async (t) => {
      const r = await evidence(k.adminToken)
      t.equal(r.status, 200)
      t.match(r.body.pack.scope, { kind: 'platform', orgId: PLATFORM_ORG })
      const heads = r.body.pack.auditChain.heads as Array<{ orgId: string; ok: boolean }>
      t.ok(
        heads.some((h) => h.orgId === a.orgId && h.ok),
        "tenant A's chain head",
      )
      t.ok(heads.some((h) => h.orgId === PLATFORM_ORG && h.ok))
      t.same(r.body.pack.capabilityConsents.installations, [], 'no tenant data in the platform scope')
      t.equal((await verify(r.body, k.adminToken)).body.valid, true)
    })

    // The CLI opens the database itself: PostgreSQL only (the embedded test database lives in this process's memory).
    if (kind === 'postgres')
      await t.test('trellis evidence create, evidence verify and export', async (t) => {
        const dir = await mkdtemp(join(tmpdir(), 'trellis-evidence-'))
        t.teardown(() => rm(dir, { recursive: true, force: true }))
        const env = { DATABASE_URL: k.databaseUrl, TRELLIS_SECRET_KEY: secretKey }
        const file = join(dir, 'pack.json')
        const from = new Date(Date.now() - DAY).toISOString()
        const created = await trellisInProcess(
          ['evidence', 'create', '--tenant', a.orgId, '--from', from, '--out', file],
          env,
        )
        t.equal(created.status, 0, created.stderr)
        const signed = JSON.parse(await readFile(file, 'utf8'))
        t.equal(signed.pack.scope.orgId, a.orgId)
        t.equal((await verify(signed)).body.valid, true, 'the API verifies what the CLI signed')
        const ok = await trellisInProcess(['evidence', 'verify', file], env)
        t.equal(ok.status, 0, ok.stdout + ok.stderr)
        t.match(ok.stdout, /^ok /)
        signed.pack.accessReview.apiKeys = []
        await writeFile(file, JSON.stringify(signed))
        const bad = await trellisInProcess(['evidence', 'verify', file], env)
        t.equal(bad.status, 1, 'a changed pack fails, exit 1')
        t.match(bad.stdout, /INVALID .*altered/)
        const archive = join(dir, 'a.trellis.jsonl')
        const exported = await trellisInProcess(['export', '--tenant', a.orgId, '--out', archive], env)
        t.equal(exported.status, 0, exported.stderr)
        t.equal(readArchive(await readFile(archive, 'utf8')).manifest.tenant.id, a.orgId)
      })

    await t.test('access review: 90 days without use, by the clock, kept or removed by the admin', async (t) => {
      const list = (token: string) => k.req('GET', '/v1/governance/access-reviews', { token })
      t.same((await list(a.token)).body.items, [], 'nothing to review while everything is in use')
      // A second key, used two days before the review (by the clock's reckoning): not up for review.
      const fresh = await k.req('POST', '/v1/api-keys', {
        token: a.token,
        body: { name: 'fresh', permissions: ['users.read'] },
      })
      await clock.advance(89 * DAY)
      t.same((await list(a.token)).body.items, [], 'the daily passes found nothing unused for 90 days yet')
      await k.ownerSql('update api_keys set last_used_at = ?::timestamptz where id = ?::uuid', [
        new Date(clock.now()).toISOString(),
        fresh.body.id,
      ])
      await clock.advance(2 * DAY)
      const reviews = (await list(a.token)).body.items
      t.equal(reviews.length, 1, 'the daily pass opened a review')
      const review = reviews[0]
      t.match(review, { status: 'open', staleDays: 90 })
      t.same(
        review.items.map((i: { kind: string; label: string }) => `${i.kind}:${i.label}`),
        ['api_key:erp-sync', 'membership:admin@evidence-a.test', 'membership:clerk@evidence-a.test'],
        'stale memberships and keys; the key used two days ago is not listed',
      )
      const item = (label: string) => review.items.find((i: { label: string }) => i.label === label).id as string
      const decide = (token: string, decisions: unknown, id = review.id) =>
        k.req('POST', `/v1/governance/access-reviews/${id}/decisions`, { token, body: { decisions } })

      t.equal((await list(b.token)).body.items.length, 1, 'tenant B has its own review')
      t.equal(
        (await decide(b.token, [{ itemId: item('clerk@evidence-a.test'), decision: 'remove' }])).body.code,
        'KRN_ERR_NOT_FOUND',
        "tenant B's admin cannot decide tenant A's review",
      )
      t.equal(
        (await decide(member.token, [{ itemId: item('clerk@evidence-a.test'), decision: 'remove' }])).body.code,
        'AUTH_ERR_FORBIDDEN',
        'a member cannot decide',
      )
      const self = await decide(a.token, [
        { itemId: item('erp-sync'), decision: 'remove' },
        { itemId: item('admin@evidence-a.test'), decision: 'remove' },
      ])
      t.equal(self.body.code, 'KRN_ERR_CONFLICT', 'an admin cannot remove themselves')
      t.equal((await k.req('GET', '/v1/users', { token: apiKey })).status, 200, 'and nothing of that call happened')

      const partly = await decide(a.token, [
        { itemId: item('erp-sync'), decision: 'remove' },
        { itemId: item('clerk@evidence-a.test'), decision: 'remove' },
      ])
      t.equal(partly.status, 200, JSON.stringify(partly.body))
      t.equal(partly.body.status, 'open', 'open until every item is decided')
      t.equal((await k.req('GET', '/v1/users', { token: apiKey })).body.code, 'AUTH_ERR_INVALID_API_KEY', 'key revoked')
      const gone = await k.req('GET', '/v1/users', { token: member.token })
      t.ok(gone.status === 401 || gone.status === 403, `the removed member's session ends (${gone.status})`)
      const members = await k.ownerSql('select 1 from memberships where tenant_id = ?::uuid', [a.orgId])
      t.equal(members.length, 1, 'only the admin remains')

      const done = await decide(a.token, [{ itemId: item('admin@evidence-a.test'), decision: 'keep' }])
      t.match(done.body, { status: 'completed', completedBy: /^user:/ })
      t.equal(
        (await decide(a.token, [{ itemId: item('admin@evidence-a.test'), decision: 'remove' }])).body.code,
        'GOV_ERR_ACCESS_REVIEW_CLOSED',
      )
      const actions = await k.ownerSql<{ action: string }>(
        `select action from audit_log where tenant_id = ?::uuid and action in
           ('governance.access_review.opened', 'governance.access_review.decided', 'membership.removed', 'api_key.revoked')
         order by id`,
        [a.orgId],
      )
      t.same(
        actions.map((x) => x.action),
        [
          'governance.access_review.opened',
          'api_key.revoked',
          'membership.removed',
          'governance.access_review.decided',
          'governance.access_review.decided',
        ],
        'audited',
      )
      const events = await k.ownerSql<{ type: string }>(
        `select type from events where tenant_id = ?::uuid and type in
           ('kernel.access_review.opened', 'kernel.membership.removed', 'kernel.api_key.revoked') order by id`,
        [a.orgId],
      )
      t.same(
        events.map((e) => e.type),
        ['kernel.access_review.opened', 'kernel.api_key.revoked', 'kernel.membership.removed'],
        'subscribers (a webhook to the admins) hear of the review and of each removal',
      )
      await clock.advance(DAY)
      t.equal((await list(a.token)).body.items.length, 1, 'no second review within the period')
      const later = await evidence(
        a.token,
        `?from=${new Date(Date.now() - DAY).toISOString()}&to=${new Date(clock.now() + DAY).toISOString()}`,
      )
      t.match(
        later.body.pack.accessReview.reviews,
        [{ id: review.id, status: 'completed', items: 3, kept: 1, removed: 2 }],
        'the evidence pack reports the review and what was decided',
      )
    })
  })
