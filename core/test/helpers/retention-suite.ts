// Retention and legal hold (governance-retention-erasure.test.ts runs it on both databases): the
// platform's bounds and a tenant's days within them (API and errors), a run with an injected
// clock that purges exactly what the policies say — plugin records, invocation transcripts, AI
// interaction text, webhook deliveries, audit payloads — and reports it; legal holds on records,
// a target and the whole tenant; and the attacks: another tenant's rows, a user without the
// permission, a forged erasure of a sealed audit entry.
import type { Test } from 'tap'
import type { TestKernel } from './test-kernel.js'
import { plant, readBack, type SubjectTenants } from './subject-plugins.js'
import { RetentionJob } from '../../src/governance/index.js'
import { orgTx } from '../../src/kernel-context.js'
import { verifyChain } from '../../src/audit/verify.js'

const DAY = 86_400_000
const CONTACTS = '@acme/crm/contacts'

/** The retention and legal-hold checks, in a kernel with the subject plugins registered and installed. */
export async function retentionSuite(t: Test, k: TestKernel, { a, b, member }: SubjectTenants): Promise<void> {
  const ctx = k.kernel.ctx
  // The job the kernel schedules, with the test's clock.
  let clock = new Date()
  const job = new RetentionJob({ db: ctx.db, orgTx: (org, fn, o) => orgTx(ctx, org, fn, o) }, { clock: () => clock })
  const put = (token: string, body: unknown) => k.req('PUT', '/v1/governance/retention', { token, body })
  const listing = async (token: string) =>
    Object.fromEntries(
      (await k.req('GET', '/v1/governance/retention', { token })).body.items.map((i: { target: string }) => [
        i.target,
        i,
      ]),
    )
  const backdate = (id: string, at: Date) =>
    k.ownerSql('update plugin_records set updated_at = ?::timestamptz where id = ?::uuid', [at.toISOString(), id])
  const exists = async (id: string) =>
    (await k.ownerSql('select 1 from plugin_records where id = ?::uuid', [id])).length === 1

  await t.test('the platform sets bounds; a tenant sets days within them', async (t) => {
    const bounds = await k.req('PUT', '/v1/platform/retention', {
      token: k.adminToken,
      body: { target: 'collections', minDays: 7, maxDays: 400 },
    })
    t.equal(bounds.status, 200, JSON.stringify(bounds.body))
    const audit = await k.req('PUT', '/v1/platform/retention', {
      token: k.adminToken,
      body: { target: 'audit-payloads', minDays: 365 },
    })
    t.equal(audit.status, 200)
    const bad = await k.req('PUT', '/v1/platform/retention', {
      token: k.adminToken,
      body: { target: 'ai-interactions', minDays: 30, maxDays: 10 },
    })
    t.same(bad.body.code, 'GOV_ERR_RETENTION_BOUNDS_INVALID')
    const bogus = await k.req('PUT', '/v1/platform/retention', {
      token: k.adminToken,
      body: { target: 'not a target', minDays: 1 },
    })
    t.same(bogus.body.code, 'GOV_ERR_RETENTION_TARGET_UNKNOWN')
    const platform = await k.req('GET', '/v1/platform/retention', { token: k.adminToken })
    t.same(
      platform.body.items.map((i: { target: string }) => i.target).sort(),
      ['audit-payloads', 'collections'],
      'a refused change wrote nothing',
    )

    const before = await listing(a.token)
    t.match(before[CONTACTS], { minDays: 7, maxDays: 400, days: null, effectiveDays: 400 })
    t.match(before['invocation-logs'], { minDays: null, days: null, effectiveDays: null })
    t.match(before['audit-payloads'], { minDays: 365, effectiveDays: null })
    t.same(Object.keys(before).sort(), [
      '@acme/billing/invoices',
      CONTACTS,
      '@acme/helpdesk/tickets',
      'ai-interactions',
      'audit-payloads',
      'invocation-logs',
      'webhook-deliveries',
    ])

    const low = await put(a.token, { target: CONTACTS, days: 3 })
    t.equal(low.status, 409)
    t.equal(low.body.code, 'GOV_ERR_RETENTION_OUT_OF_BOUNDS')
    t.equal((await put(a.token, { target: CONTACTS, days: 401 })).body.code, 'GOV_ERR_RETENTION_OUT_OF_BOUNDS')
    t.equal((await put(a.token, { target: '@acme/nope/x', days: 30 })).body.code, 'GOV_ERR_RETENTION_TARGET_UNKNOWN')
    t.equal((await put(a.token, { target: CONTACTS, days: 0 })).body.code, 'KRN_ERR_VALIDATION_FAILED')
    t.equal((await put(a.token, { target: CONTACTS, days: null })).body.code, 'KRN_ERR_VALIDATION_FAILED')
    t.equal((await listing(a.token))[CONTACTS].days, null, 'nothing written by the refused requests')

    const ok = await put(a.token, { target: CONTACTS, days: 30 })
    t.equal(ok.status, 200, JSON.stringify(ok.body))
    t.match(ok.body, { target: CONTACTS, days: 30, effectiveDays: 30 })
    t.equal((await put(a.token, { target: 'invocation-logs', days: 30 })).status, 200)
    t.equal((await put(a.token, { target: 'ai-interactions', days: 30 })).status, 200)
    t.equal((await put(a.token, { target: 'webhook-deliveries', days: 10 })).status, 200)
    const cleared = await k.req('DELETE', '/v1/governance/retention?target=webhook-deliveries', { token: a.token })
    t.match(cleared.body, { target: 'webhook-deliveries', days: null, effectiveDays: null }, 'cleared again')
    t.equal((await listing(b.token))[CONTACTS].days, null, "tenant B's retention is its own")
    const changed = await k.appSql(a.orgId, `select data from audit_log where action = 'governance.retention.changed'`)
    t.equal(changed.length, 5, 'each change audited')
  })

  await t.test('who may set retention', async (t) => {
    const r = await put(member.token, { target: CONTACTS, days: 'not even a number' })
    t.equal(r.status, 403, 'refused before the body is validated')
    t.equal(r.body.code, 'AUTH_ERR_FORBIDDEN')
    t.equal((await k.req('GET', '/v1/governance/retention/runs', { token: member.token })).status, 403)
    const tenantAsPlatform = await k.req('PUT', '/v1/platform/retention', {
      token: a.token,
      body: { target: 'collections', minDays: 1 },
    })
    t.equal(tenantAsPlatform.status, 403, 'a tenant admin cannot change the bounds')
    // Row-level security: a tenant transaction cannot write the platform's bounds either.
    await t.rejects(
      k.appSql(a.orgId, `insert into retention_floors (target, min_days, updated_by) values ('collections', 1, 'x')`),
    )
  })

  await t.test('a run purges exactly what the policies say, as of its clock, and reports it', async (t) => {
    clock = new Date(Date.now() + DAY)
    const old = await plant(k, a.token, '@acme/crm', { email: 'old@a.test', name: 'Old Timer' })
    const edge = await plant(k, a.token, '@acme/crm', { email: 'edge@a.test', name: 'Edge Case' })
    const fresh = await plant(k, a.token, '@acme/crm', { email: 'fresh@a.test', name: 'Fresh Face' })
    const bOld = await plant(k, b.token, '@acme/crm', { email: 'old@b.test', name: 'Old In B' })
    await backdate(old.id, new Date(clock.getTime() - 30 * DAY - 1))
    await backdate(edge.id, new Date(clock.getTime() - 30 * DAY))
    await backdate(fresh.id, new Date(clock.getTime() - 29 * DAY))
    await backdate(bOld.id, new Date(clock.getTime() - 300 * DAY))
    // The invocations that wrote them: two made old, the others stay recent.
    await ctx.plugins.recorder.flush()
    const invs = await k.appSql<{ id: string; input: unknown }>(
      a.orgId,
      'select id, input from plugin_invocations order by id',
    )
    t.ok(invs.length >= 3 && invs.every((i) => i.input !== null), 'invocations recorded with their input')
    await k.ownerSql('update plugin_invocations set started_at = ?::timestamptz where id = any(?::uuid[])', [
      new Date(clock.getTime() - 31 * DAY).toISOString(),
      `{${invs
        .slice(0, 2)
        .map((i) => i.id)
        .join(',')}}`,
    ])
    // Two AI interaction records, as the AI service writes them: one old, one recent.
    for (const at of [new Date(clock.getTime() - 40 * DAY), new Date(clock.getTime() - DAY)])
      await k.appSql(
        a.orgId,
        `insert into ai_records (id, at, feature, model_alias, model_id, provider, outcome, prompt, answer)
           values (gen_random_uuid(), ?::timestamptz, 'copilot', 'm', 'm', 'local', 'ok', 'what about Old Timer?', 'an answer')`,
        [at.toISOString()],
      )

    // Webhook deliveries as the event pipeline leaves them: finished ones (with their attempts), a pending one.
    t.equal((await put(a.token, { target: 'webhook-deliveries', days: 30 })).status, 200)
    const [event] = await k.ownerSql<{ id: string }>(
      `insert into events (id, tenant_id, type, source, subject, dispatched_at, processed_at)
         values (gen_random_uuid(), ?::uuid, 'crm.contact.created', 'test', 'c', now(), now()) returning id`,
      [a.orgId],
    )
    const delivery = async (endpointId: string, status: string, at: Date) => {
      const [d] = await k.ownerSql<{ id: string }>(
        `insert into webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type, status, updated_at, created_at)
           values (gen_random_uuid(), ?::uuid, ?::uuid, ?::uuid, 'crm.contact.created', ?, ?::timestamptz, ?::timestamptz) returning id`,
        [a.orgId, endpointId, event!.id, status, at.toISOString(), at.toISOString()],
      )
      await k.ownerSql(
        `insert into webhook_attempts (id, tenant_id, delivery_id, attempt, duration_ms, response) values (gen_random_uuid(), ?::uuid, ?::uuid, 1, 5, 'ok')`,
        [a.orgId, d!.id],
      )
      return d!.id
    }
    // One delivery per endpoint and event: a second endpoint for each further delivery.
    const deliveries: Record<string, string> = {}
    for (const [name, status, age] of [
      ['oldDelivered', 'delivered', 31],
      ['oldFailed', 'failed', 45],
      ['oldPending', 'pending', 60],
      ['recent', 'delivered', 2],
    ] as const) {
      const [ep] = await k.ownerSql<{ id: string }>(
        `insert into webhook_endpoints (id, tenant_id, url, types, status, secret_enc)
           values (gen_random_uuid(), ?::uuid, 'https://hooks.example.test/y', '{crm.*}', 'disabled', 'x') returning id`,
        [a.orgId],
      )
      deliveries[name] = await delivery(ep!.id, status, new Date(clock.getTime() - age * DAY))
    }
    const deliveryLeft = async (id: string) =>
      (await k.ownerSql('select 1 from webhook_deliveries where id = ?::uuid', [id])).length === 1

    const runs = await job.runAll()
    const runA = runs.find((r) => r.tenantId === a.orgId)
    t.ok(runA, 'a run recorded for tenant A')
    const runB = runs.find((r) => r.tenantId === b.orgId)
    t.same(runB?.purged, { [CONTACTS]: 0 }, "tenant B set nothing: the platform's 400-day ceiling applies to it")
    t.same(runA!.purged, {
      '@acme/billing/invoices': 0,
      [CONTACTS]: 1,
      '@acme/helpdesk/tickets': 0,
      'invocation-logs': 2,
      'ai-interactions': 1,
      'webhook-deliveries': 2,
    })
    t.equal(runA!.total, 6)
    t.notOk(await deliveryLeft(deliveries.oldDelivered!), 'an old delivered delivery is purged')
    t.notOk(await deliveryLeft(deliveries.oldFailed!), 'an old failed one too')
    t.ok(await deliveryLeft(deliveries.oldPending!), 'a pending delivery is never purged')
    t.ok(await deliveryLeft(deliveries.recent!), 'a recent one is kept')
    const attempts = await k.ownerSql<{ delivery_id: string }>(
      'select delivery_id from webhook_attempts where tenant_id = ?::uuid',
      [a.orgId],
    )
    t.same(
      attempts.map((r) => r.delivery_id).sort(),
      [deliveries.oldPending!, deliveries.recent!].sort(),
      'the purged deliveries took their attempts with them',
    )
    t.notOk(await exists(old.id), 'the record past its retention is gone')
    t.ok(await exists(edge.id), 'a record exactly 30 days old is kept')
    t.ok(await exists(fresh.id), 'a recent record is kept')
    t.ok(await exists(bOld.id), "tenant B's old record is not A's policy's business")
    t.equal((await readBack(k, a.token, '@acme/crm', old.id)).status, 404)
    t.equal((await readBack(k, a.token, '@acme/crm', fresh.id)).body.name, 'Fresh Face')
    await ctx.plugins.recorder.flush()
    const after = await k.appSql<{ id: string; input: unknown; transcript: unknown; logs: unknown[] }>(
      a.orgId,
      'select id, input, transcript, logs from plugin_invocations order by id',
    )
    t.same(
      after.slice(0, 2).map((i) => [i.input, i.transcript, i.logs]),
      [
        [null, null, []],
        [null, null, []],
      ],
      'old invocations lost their input, transcript and logs',
    )
    t.ok(
      after.slice(2).every((i) => i.input !== null),
      'recent invocations keep theirs',
    )
    t.equal(after.length, invs.length + 2, 'invocation rows (their metrics) stay')
    const ai = await k.appSql<{ prompt: string | null }>(a.orgId, 'select prompt from ai_records order by at')
    t.same(
      ai.map((r) => r.prompt),
      [null, 'what about Old Timer?'],
    )

    const listed = await k.req('GET', '/v1/governance/retention/runs', { token: a.token })
    t.equal(listed.status, 200)
    t.match(listed.body.items[0], { id: runA!.id, asOf: clock.toISOString(), total: 6, purged: { [CONTACTS]: 1 } })
    const bRuns = await k.req('GET', '/v1/governance/retention/runs', { token: b.token })
    t.same(
      bRuns.body.items.map((r: { id: string }) => r.id),
      [runB!.id],
      "B sees its own run, none of A's",
    )
    await ctx.sealer.sealAll()
    const audited = await k.appSql(a.orgId, `select data from audit_log where action = 'governance.retention.purged'`)
    t.match(audited, [{ data: { purged: { [CONTACTS]: 1 } } }], 'the run is audited')

    const again = await job.runAll()
    t.equal(again.find((r) => r.tenantId === a.orgId)!.total, 0, 'a second run at the same clock purges nothing more')
  })

  await t.test('legal holds suspend purging: records, a target, the whole tenant', async (t) => {
    const keep = await plant(k, a.token, '@acme/crm', { email: 'keep@a.test', name: 'Kept By Hold' })
    const go = await plant(k, a.token, '@acme/crm', { email: 'go@a.test', name: 'Not Held' })
    for (const r of [keep, go]) await backdate(r.id, new Date(clock.getTime() - 60 * DAY))

    const badHold = await k.req('POST', '/v1/governance/legal-holds', {
      token: a.token,
      body: { recordIds: [keep.id], reason: 'no target' },
    })
    t.equal(badHold.body.code, 'GOV_ERR_LEGAL_HOLD_INVALID')
    const otherTenant = await k.req('POST', '/v1/governance/legal-holds', {
      token: b.token,
      body: { target: CONTACTS, recordIds: [keep.id], reason: 'B tries to hold A records' },
    })
    t.equal(otherTenant.status, 201, "B may hold ids, but only B's rows are ever covered")
    const onRecords = await k.req('POST', '/v1/governance/legal-holds', {
      token: a.token,
      body: { target: CONTACTS, recordIds: [keep.id], reason: 'litigation 2026-17' },
    })
    t.equal(onRecords.status, 201, JSON.stringify(onRecords.body))

    let run = (await job.runTenant(a.orgId))!
    t.equal(run.purged[CONTACTS], 1, 'the record not held is purged')
    t.equal(run.held[CONTACTS], 1, 'the held one is counted as held')
    t.notOk(await exists(go.id))
    t.ok(await exists(keep.id), 'the held record is kept')

    const tenantHold = await k.req('POST', '/v1/governance/legal-holds', {
      token: a.token,
      body: { reason: 'regulator inquiry' },
    })
    t.equal(tenantHold.status, 201)
    const also = await plant(k, a.token, '@acme/crm', { email: 'also@a.test', name: 'Under Tenant Hold' })
    await backdate(also.id, new Date(clock.getTime() - 60 * DAY))
    run = (await job.runTenant(a.orgId))!
    t.equal(run.total, 0, 'nothing purged under a tenant-wide hold')
    t.equal(run.held[CONTACTS], 2, 'both old records held')
    t.ok(await exists(also.id))

    const released = await k.req('POST', `/v1/governance/legal-holds/${tenantHold.body.id}/release`, {
      token: a.token,
    })
    t.equal(released.status, 200)
    t.ok(released.body.releasedAt)
    const twice = await k.req('POST', `/v1/governance/legal-holds/${tenantHold.body.id}/release`, { token: a.token })
    t.equal(twice.body.code, 'GOV_ERR_LEGAL_HOLD_NOT_FOUND')
    const fromB = await k.req('POST', `/v1/governance/legal-holds/${onRecords.body.id}/release`, { token: b.token })
    t.equal(fromB.body.code, 'GOV_ERR_LEGAL_HOLD_NOT_FOUND', "B cannot release A's hold")

    const onTarget = await k.req('POST', '/v1/governance/legal-holds', {
      token: a.token,
      body: { target: CONTACTS, reason: 'whole collection' },
    })
    run = (await job.runTenant(a.orgId))!
    t.equal(run.purged[CONTACTS], 0, 'a hold on the target keeps all of it')
    t.ok(await exists(also.id))
    await k.req('POST', `/v1/governance/legal-holds/${onTarget.body.id}/release`, { token: a.token })
    run = (await job.runTenant(a.orgId))!
    t.equal(run.purged[CONTACTS], 1, 'released: the next run purges what it kept')
    t.notOk(await exists(also.id))
    t.ok(await exists(keep.id), 'the record hold still holds')

    const holds = await k.req('GET', '/v1/governance/legal-holds?active=true', { token: a.token })
    t.same(
      holds.body.items.map((h: { id: string }) => h.id),
      [onRecords.body.id],
    )
  })

  await t.test('the scheduled job runs by itself', async (t) => {
    const runsOf = async () =>
      (await k.appSql<{ n: number }>(a.orgId, 'select count(*)::int as n from retention_runs'))[0]!.n
    const before = await runsOf()
    const scheduled = new RetentionJob(
      { db: ctx.db, orgTx: (org, fn, o) => orgTx(ctx, org, fn, o) },
      { intervalMs: 20, clock: () => clock },
    )
    scheduled.start()
    t.teardown(() => scheduled.close())
    // Wait for the positive signal: a run recorded without anybody calling it.
    while ((await runsOf()) === before) await new Promise((r) => setTimeout(r, 20))
    await scheduled.close()
    t.ok((await runsOf()) > before, 'a run was recorded on schedule')
  })

  await t.test('audit payloads past retention are erased and the chain still verifies', async (t) => {
    await ctx.sealer.sealAll()
    const sealed = await k.appSql<{ id: string }>(
      a.orgId,
      `select id from audit_log where hash is not null and data <> '{}'::jsonb order by seq`,
    )
    t.ok(sealed.length > 5, 'entries with payloads')
    t.equal((await put(a.token, { target: 'audit-payloads', days: 364 })).body.code, 'GOV_ERR_RETENTION_OUT_OF_BOUNDS')
    t.equal((await put(a.token, { target: 'audit-payloads', days: 365 })).status, 200)
    await ctx.sealer.sealAll()
    const beforeB = await k.appSql<{ n: number }>(
      b.orgId,
      `select count(*)::int as n from audit_log where erased_at is null and data <> '{}'::jsonb`,
    )
    clock = new Date(Date.now() + 366 * DAY)
    const run = (await job.runTenant(a.orgId))!
    t.ok(run.purged['audit-payloads']! >= sealed.length, `payloads erased (${run.purged['audit-payloads']})`)
    const rows = await k.appSql<{ data: unknown; erased_at: Date | null; hash: string }>(
      a.orgId,
      'select data, erased_at, hash from audit_log where id = any(?::uuid[])',
      [`{${sealed.map((s) => s.id).join(',')}}`],
    )
    t.ok(
      rows.every((r) => r.erased_at !== null && JSON.stringify(r.data) === '{}'),
      'every old payload erased',
    )
    await ctx.sealer.sealAll()
    const report = await verifyChain(ctx.db, a.orgId)
    t.equal(report.ok, true, JSON.stringify(report.brokenAt))
    t.ok(report.entries > sealed.length)
    const afterB = await k.appSql<{ n: number }>(
      b.orgId,
      `select count(*)::int as n from audit_log where erased_at is null and data <> '{}'::jsonb`,
    )
    t.same(afterB, beforeB, "tenant B's payloads untouched")
    t.equal((await verifyChain(ctx.db, b.orgId)).ok, true)
  })

  await t.test('attacks on the audit chain through erasure', async (t) => {
    const [entry] = await k.appSql<{ id: string }>(
      a.orgId,
      `select id from audit_log where hash is not null and erased_at is null order by seq limit 1`,
    )
    // Erasing means an empty payload, once: rewriting it is refused by the guard.
    await t.rejects(
      k.appSql(a.orgId, `update audit_log set data = '{"forged":true}'::jsonb, erased_at = now() where id = ?::uuid`, [
        entry!.id,
      ]),
      'a payload cannot be rewritten, only erased',
    )
    await t.rejects(
      k.appSql(a.orgId, `update audit_log set action = 'x', data = '{}'::jsonb, erased_at = now() where id = ?::uuid`, [
        entry!.id,
      ]),
      'nothing else of the entry may change with it',
    )
    const [other] = await k.appSql<{ id: string }>(
      b.orgId,
      `select id from audit_log where hash is not null and erased_at is null limit 1`,
    )
    const crossed = await k.appSql(
      a.orgId,
      `update audit_log set data = '{}'::jsonb, erased_at = now() where id = ?::uuid returning id`,
      [other!.id],
    )
    t.same(crossed, [], "tenant A cannot erase tenant B's payloads (row-level security)")
    // An owner who alters a payload without going through erasure is caught by verify.
    await k.ownerSql('alter table audit_log disable trigger audit_log_guard')
    await k.ownerSql(`update audit_log set data = '{"altered":true}'::jsonb where id = ?::uuid`, [other!.id])
    await k.ownerSql('alter table audit_log enable trigger audit_log_guard')
    const broken = await verifyChain(ctx.db, b.orgId)
    t.equal(broken.ok, false)
    t.match(broken.brokenAt!.reason, /altered/)
  })
}
