// The host-call transcript of plugin invocations: each recent invocation shows what the plugin
// was given and the host calls it made, bounded and masked; the tenant's admins read it all, the
// plugin's publisher only the ops, outcomes and durations; nobody else reads any of it; and
// `trellis-plugin logs` prints it.
import t from 'tap'
import { join } from 'node:path'
import { runCli } from '../plugin-sdk/src/cli/main.js'
import { formatTranscript } from '../plugin-sdk/src/cli/transcript-format.js'
import {
  MAX_CALLS,
  summarize,
  TranscriptBudget,
  TranscriptRecorder,
} from '../core/src/plugins/invocation-transcript.js'
import { builtFixture, registerVersion } from '../core/test/helpers/plugin-versions.js'
import { addUser, createTenantWithAdmin, DB_KINDS, startTestKernel } from '../core/test/helpers/test-kernel.js'

const NOTES = join(import.meta.dirname, '..', 'core', 'test', 'fixtures', 'plugins', 'notes')
const notes = await builtFixture('notes')
const manifest = notes.manifest

t.test('summaries are bounded and masked; the transcript keeps the first calls and counts the rest', async (t) => {
  const long = 'x'.repeat(5000)
  const s = summarize({
    email: 'write to alice@example.com please',
    card: 'card 4111 1111 1111 1111',
    password: 'hunter2',
    headers: { Authorization: 'Bearer abc' },
    long,
    list: Array.from({ length: 40 }, (_, i) => i),
    deep: { a: { b: { c: { d: { e: 1 } } } } },
  }) as Record<string, any>
  t.equal(s.email, 'write to [EMAIL_1] please')
  t.equal(s.card, 'card [CARD_1]')
  t.equal(s.password, '[redacted]')
  t.equal(s.headers.Authorization, '[redacted]')
  t.ok(s.long.length < 200 && s.long.endsWith('(5000 chars)'))
  t.same(s.list, [0, 1, 2, 3, 4, '… 35 more'])
  t.same(s.deep, { a: { b: { c: '{…}' } } })
  t.ok(JSON.stringify(summarize(Array.from({ length: 500 }, () => ({ k: long })))).length < 1600)

  const rec = new TranscriptRecorder()
  for (let i = 0; i < MAX_CALLS + 7; i++) await rec.around('data.get', { id: String(i) }, async () => ({ ok: i }))
  await rec.around('secrets.get', { name: 'x' }, async () => 'the-secret').catch(() => undefined)
  await t.rejects(
    rec.around('data.insert', {}, async () => {
      throw new Error('no')
    }),
  )
  const tr = rec.transcript()
  t.equal(tr.calls.length, MAX_CALLS)
  t.equal(tr.omitted, 9, 'calls past the limit are counted, not kept')
  t.same(tr.calls[0], { op: 'data.get', args: { id: '0' }, ok: true, result: { ok: 0 }, ms: tr.calls[0]!.ms })

  const secret = new TranscriptRecorder()
  await secret.around('secrets.get', { name: 'apiToken' }, async () => 'the-secret')
  await secret
    .around('data.insert', {}, async () => {
      throw Object.assign(new Error('x'), { code: 'KRN_ERR_X' })
    })
    .catch(() => undefined)
  t.equal(secret.transcript().calls[0]!.result, '[secret]', 'a secret is never kept')
  t.equal(secret.transcript().calls[1]!.ok, false)
})

t.test(
  "an installation's budget of detailed records refills at its rate per minute; the outline keeps no data",
  async (t) => {
    let now = 0
    const budget = new TranscriptBudget(3, () => now)
    t.same(
      [1, 2, 3, 4].map(() => budget.take('a')),
      [true, true, true, false],
      'three, then none',
    )
    t.ok(budget.take('b'), 'each installation has its own')
    now += 19_000
    t.notOk(budget.take('a'), 'not yet a whole one back (3 a minute: one per 20 s)')
    now += 1_000
    t.ok(budget.take('a'), 'one back after 20 s')
    t.notOk(budget.take('a'))
    now += 10 * 60_000
    t.same(
      [1, 2, 3, 4].map(() => budget.take('a')),
      [true, true, true, false],
      'never more than a minute saved up',
    )
    t.ok(new TranscriptBudget(Number.POSITIVE_INFINITY).take('a'), 'Infinity keeps every one')
    t.notOk(new TranscriptBudget(0).take('a'), '0 keeps none')

    const rec = new TranscriptRecorder()
    await rec.around('data.get', { id: 'alice@example.com' }, async () => ({ email: 'alice@example.com' }))
    await t.rejects(
      rec.around('data.insert', { record: { name: 'Alice' } }, async () => {
        throw new Error('no')
      }),
    )
    const outline = rec.outline()
    t.same(
      outline.calls.map(({ ms, ...c }) => c),
      [
        { op: 'data.get', ok: true },
        { op: 'data.insert', ok: false, error: 'KRN_ERR_INTERNAL' },
      ],
    )
    t.equal(outline.sampled, true)
    t.notOk(JSON.stringify(outline).includes('alice'), 'no argument or result')
    const printed = formatTranscript({ transcript: outline })
    t.match(printed[0], /^ {4}#1 data\.get ok \([\d.]+ ms\)$/, 'trellis-plugin logs prints the call without arguments')
    t.match(
      printed.at(-1),
      /not kept: a successful run past its installation's detailed records a minute; PUT \/v1\/installations\/<id>\/detail-window/,
      'and says why, and how to keep them',
    )
  },
)

for (const kind of DB_KINDS) {
  t.test(`invocation transcripts on ${kind}`, async (t) => {
    let clockMs = 0
    const k = await startTestKernel(t, kind, {
      // Four detailed records a minute per installation, on a clock that moves only when told.
      plugins: { sandboxWorkers: 1, detailedTranscriptsPerMinute: 4, transcriptClock: () => clockMs },
    })
    const partner = await k.req('POST', '/v1/partners', {
      token: k.adminToken,
      body: {
        name: 'Acme',
        slug: `acme-tr-${kind}`,
        admin: { email: `dev@acme-tr-${kind}.test`, name: 'Dev', password: 'password-of-acme-dev' },
      },
    })
    const publisher = await k.login(`dev@acme-tr-${kind}.test`, 'password-of-acme-dev')
    await registerVersion(k, { ...notes, publisherId: partner.body.id })
    const a = await createTenantWithAdmin(k, `tr-a-${kind}`)
    const b = await createTenantWithAdmin(k, `tr-b-${kind}`)
    const installed = await k.req('POST', '/v1/installations', {
      token: a.token,
      body: {
        plugin: '@acme/notes',
        version: '1.0.0',
        capabilities: manifest.capabilities,
        settings: { apiToken: 's3cret-token-value' },
      },
    })
    t.equal(installed.status, 201, JSON.stringify(installed.body))
    const id = installed.body.id as string

    const created = await k.req('POST', '/v1/x/notes/notes', {
      token: a.token,
      body: { title: 'call alice@example.com about the order', tags: ['crm'] },
    })
    t.equal(created.status, 201, JSON.stringify(created.body))
    t.equal((await k.req('GET', '/v1/x/notes/whoami', { token: a.token })).status, 200)

    const page = await k.req('GET', `/v1/installations/${id}/invocations`, { token: a.token })
    t.equal(page.status, 200)
    const post = page.body.items.find((i: any) => i.entryName === 'POST /notes')
    t.ok(post, 'the route invocation is listed')
    t.equal(post.input.method, 'POST')
    t.equal(post.input.body.title, 'call [EMAIL_1] about the order', 'its input, with the e-mail address masked')
    t.notOk('authorization' in post.input.headers, 'never the credential')
    t.same(
      post.transcript.calls.map((c: any) => [c.op, c.ok]),
      [
        ['data.insert', true],
        ['events.emit', true],
      ],
      'each host call, in order, with its outcome',
    )
    const insert = post.transcript.calls[0]
    t.equal(insert.args.collection, 'notes')
    t.match(insert.args.record, { title: 'call [EMAIL_1] about the order', tags: ['crm'] })
    t.equal(insert.result.id, created.body.id, 'with its result')
    t.type(insert.ms, 'number')
    t.equal(post.transcript.omitted, 0)

    const whoami = page.body.items.find((i: any) => i.entryName === 'GET /whoami')
    const secret = whoami.transcript.calls.find((c: any) => c.op === 'secrets.get')
    t.same(secret.args, { name: 'apiToken' })
    t.equal(secret.result, '[secret]', "a secret's value is never kept")
    const [raw] = await k.ownerSql(
      `select input::text || transcript::text as text from plugin_invocations where id = ?`,
      [post.id],
    )
    t.notOk(raw.text.includes('alice@example.com'), 'the stored transcript holds the masked text only')
    const stored = await k.ownerSql(`select count(*)::int as n from plugin_invocations where transcript::text like ?`, [
      '%s3cret-token-value%',
    ])
    t.equal(stored[0].n, 0, 'the secret is stored nowhere in any transcript')

    t.test('the publisher sees the ops, outcomes and durations, never the data', async (t) => {
      const pub = await k.req('GET', '/v1/plugins/@acme/notes/invocations', { token: publisher.token })
      t.equal(pub.status, 200)
      const item = pub.body.items.find((i: any) => i.entryName === 'POST /notes')
      t.same(
        item.transcript.calls.map((c: any) => c.op),
        ['data.insert', 'events.emit'],
      )
      t.notOk('args' in item.transcript.calls[0] || 'result' in item.transcript.calls[0])
      t.notOk('input' in item)
      const text = JSON.stringify(pub.body)
      t.notOk(text.includes('EMAIL_1') || text.includes('about the order') || text.includes(created.body.id))
    })

    t.test('nobody else reads it', async (t) => {
      const other = await k.req('GET', `/v1/installations/${id}/invocations`, { token: b.token })
      t.equal(other.status, 404, "another tenant's admin")
      const member = await addUser(k, a.token, `member@tr-a-${kind}.test`, 'tenant_member')
      const denied = await k.req('GET', `/v1/installations/${id}/invocations`, { token: member.token })
      t.equal(denied.status, 403, 'a tenant member without audit.read')
      t.equal(denied.body.code, 'AUTH_ERR_FORBIDDEN')
      // Another publisher's view of this plugin is a 404: core/test/plugins.test.ts.
    })

    t.test(
      "past the installation's budget a successful run keeps the outline of its host calls; a failed one all",
      async (t) => {
        const installedB = await k.req('POST', '/v1/installations', {
          token: b.token,
          body: { plugin: '@acme/notes', version: '1.0.0', capabilities: manifest.capabilities },
        })
        t.equal(installedB.status, 201, JSON.stringify(installedB.body))
        const list = async () =>
          t.equal((await k.req('GET', '/v1/x/notes/notes?tag=q', { token: b.token })).status, 200)
        for (let i = 0; i < 5; i++) await list()
        const failed = await k.req('POST', '/v1/x/notes/notes', { token: b.token, body: { title: 'x', fail: true } })
        t.equal(failed.status, 502, 'the plugin failed')
        clockMs += 15_000 // a quarter of a minute: one more detailed record
        await list()
        const items = (await k.req('GET', `/v1/installations/${installedB.body.id}/invocations`, { token: b.token }))
          .body.items as any[]
        const runs = items.reverse()
        t.same(
          runs.map((r) => [r.entryName, r.outcome, r.transcript.sampled === true, r.input?.query?.tag ?? null]),
          [
            ['GET /notes', 'ok', false, 'q'],
            ['GET /notes', 'ok', false, 'q'],
            ['GET /notes', 'ok', false, 'q'],
            ['GET /notes', 'ok', false, 'q'],
            ['GET /notes', 'ok', true, null],
            ['POST /notes', 'error', false, null],
            ['GET /notes', 'ok', false, 'q'],
          ],
          'four detailed runs, then the outline only; the failure whole; a detailed one again a quarter-minute later',
        )
        t.same(
          runs[4].transcript.calls.map((c: any) => Object.keys(c).sort()),
          [['ms', 'ok', 'op']],
          'op, outcome, duration',
        )
        t.equal(runs[4].transcript.calls[0].op, 'data.find')
        t.match(runs[3].transcript.calls[0], { op: 'data.find', args: { collection: 'notes' }, result: { items: [] } })
        t.same(
          runs[5].transcript.calls.map((c: any) => [c.op, c.ok, c.args?.collection ?? null]),
          [
            ['data.insert', true, 'notes'],
            ['events.emit', true, null],
          ],
        )
        t.equal(runs[5].input.body.title, 'x', 'the failed run keeps its input')

        // The budget is spent (the clock stands still): a detail window keeps every run whole.
        const windowUrl = `/v1/installations/${installedB.body.id}/detail-window`
        const member = await addUser(k, b.token, `member@tr-b-${kind}.test`, 'tenant_member')
        const denied = await k.req('PUT', windowUrl, { token: member.token, body: { minutes: 30 } })
        t.equal(denied.status, 403, 'a member who may not install plugins may not open it')
        t.equal(
          (await k.req('PUT', windowUrl, { token: a.token, body: { minutes: 30 } })).status,
          404,
          'nor another tenant',
        )
        const tooLong = await k.req('PUT', windowUrl, { token: b.token, body: { minutes: 100_000 } })
        t.equal(tooLong.status, 400)
        t.equal(tooLong.body.code, 'KRN_ERR_VALIDATION_FAILED')
        const before = Date.now()
        const opened = await k.req('PUT', windowUrl, { token: b.token, body: { minutes: 30 } })
        t.equal(opened.status, 200, JSON.stringify(opened.body))
        const until = Date.parse(opened.body.detailUntil)
        t.ok(until > before + 29 * 60_000 && until < Date.now() + 31 * 60_000, 'open for 30 minutes')
        await list()
        await list()
        const closed = await k.req('DELETE', windowUrl, { token: b.token })
        t.same(closed.body, { installationId: installedB.body.id, detailUntil: null })
        await list()
        const later = (await k.req('GET', `/v1/installations/${installedB.body.id}/invocations`, { token: b.token }))
          .body.items as any[]
        t.same(
          later.slice(0, 3).map((r) => [r.transcript.sampled === true, r.input?.query?.tag ?? null]),
          [
            [true, null],
            [false, 'q'],
            [false, 'q'],
          ],
          'both runs in the window kept everything; the one after it the outline',
        )
        const acts = await k.ownerSql(
          `select action, data from audit_log where tenant_id = ?::uuid and target_id = ? and action like 'plugin.detail.%' order by at`,
          [b.orgId, installedB.body.id],
        )
        t.same(
          acts.map((r: any) => [r.action, r.data]),
          [
            ['plugin.detail.opened', { minutes: 30 }],
            ['plugin.detail.closed', {}],
          ],
          'opening and closing are audited',
        )
      },
    )

    t.test('trellis-plugin logs prints each invocation with its input and host calls', async (t) => {
      const url = await k.kernel.app.listen({ port: 0, host: '127.0.0.1' })
      let out = ''
      const code = await runCli(['logs', '--dir', NOTES, '--url', url, '--token', a.token, '-n', '5'], {
        stdout: (s) => (out += s),
        stderr: () => {},
      })
      t.equal(code, 0, out)
      t.match(out, /ok {2}route POST \/notes/)
      t.match(out, /input \{.*"method":"POST"/)
      t.match(out, /#1 data\.insert \{.*"collection":"notes".*→ .* \([\d.]+ ms\)/)
      t.match(out, /#1 secrets\.get \{"name":"apiToken"\} → "\[secret\]"/)
      t.notOk(out.includes('alice@example.com'))
      let json = ''
      t.equal(
        await runCli(['logs', '--dir', NOTES, '--url', url, '--token', a.token, '--json'], {
          stdout: (s) => (json += s),
          stderr: () => {},
        }),
        0,
      )
      const parsed = JSON.parse(json)
      t.ok(parsed.invocations.some((i: any) => i.transcript?.calls?.some((c: any) => c.op === 'data.insert')))
      let bare = ''
      await runCli(['logs', '--dir', NOTES, '--url', url, '--token', a.token, '--no-transcript'], {
        stdout: (s) => (bare += s),
        stderr: () => {},
      })
      t.notOk(bare.includes('data.insert'), '--no-transcript leaves the host calls out')
    })
  })
}
