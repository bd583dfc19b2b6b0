// Right to erasure (governance-retention-erasure.test.ts runs it on both databases): a contact's
// personal data planted in three plugins (and, through them, in invocation transcripts, an AI
// record, an audit payload, an event the CRM emits and the webhook attempt that delivered it to a
// receiver echoing what it got) is erased by one request; every copy is gone (checked with SQL),
// another contact and another tenant keep theirs, the erasure is audited without the identifier,
// and the audit chain still verifies.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'
import type { TestKernel } from './test-kernel.js'
import { plant, readBack, SHARED_EVENT, share, type SubjectTenants } from './subject-plugins.js'
import { eventually } from './receiver.js'
import { appendAudit } from '../../src/audit/audit-log.js'
import { verifyChain } from '../../src/audit/verify.js'

const ada = {
  email: 'ada@example.test',
  name: 'Ada Lovelace',
  phone: '+44 20 7946 0018',
  address: '12 Analytical Row, London',
  body: 'My difference engine order #77 never arrived',
}
const bob = { email: 'bob@example.test', name: 'Bob Babbage', phone: '+44 20 7946 0999' }

/** Ada's values that must appear nowhere in the tenant's rows after the erasure. */
const ADA_VALUES = [ada.email, ada.name, ada.phone, ada.address, ada.body]

/** The erasure checks, in a kernel with the subject plugins registered and installed. */
export async function erasureSuite(t: Test, k: TestKernel, { a, b, member }: SubjectTenants): Promise<void> {
  const ctx = k.kernel.ctx

  const planted = {
    crm: await plant(k, a.token, '@acme/crm', { email: ada.email, name: ada.name, phone: ada.phone, tier: 'gold' }),
    billing: await plant(k, a.token, '@acme/billing', {
      customerEmail: ada.email,
      billingAddress: ada.address,
      amount: '120.00',
    }),
    helpdesk: await plant(k, a.token, '@acme/helpdesk', { requester: ada.email, body: ada.body, status: 'open' }),
    bobCrm: await plant(k, a.token, '@acme/crm', { email: bob.email, name: bob.name, phone: bob.phone }),
    bobBilling: await plant(k, a.token, '@acme/billing', { customerEmail: bob.email, billingAddress: '1 Other St' }),
    inB: await plant(k, b.token, '@acme/crm', { email: ada.email, name: ada.name, phone: ada.phone }),
  }
  // A copy in an AI interaction record and one in an audit payload, as the kernel writes them.
  await k.appSql(
    a.orgId,
    `insert into ai_records (id, feature, model_alias, model_id, provider, outcome, prompt, answer)
       values (gen_random_uuid(), 'copilot', 'm', 'm', 'local', 'ok', ?, 'noted')`,
    [`Summarise the open tickets of ${ada.name}`],
  )
  await ctx.db.inOrg(a.orgId, (tx) =>
    appendAudit(tx, a.orgId, {
      actor: { kind: 'system', id: 'test' },
      action: 'crm.contact.exported',
      target: { kind: 'record', id: planted.crm.id },
      data: { phone: ada.phone },
    }),
  )
  // The CRM shares Ada and Bob in events; tenant A's webhook delivers them to a receiver that
  // answers with what it got, so the attempts' stored responses hold their values too.
  const echo = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(body))
  })
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => echo.close(() => r())))
  const hook = await k.req('POST', '/v1/webhooks', {
    token: a.token,
    body: { url: `http://127.0.0.1:${(echo.address() as AddressInfo).port}/hook`, types: [SHARED_EVENT] },
  })
  t.equal(hook.status, 201, JSON.stringify(hook.body))
  const adaEvent = await share(k, a.token, planted.crm.id)
  const bobEvent = await share(k, a.token, planted.bobCrm.id)
  const adaEventInB = await share(k, b.token, planted.inB.id)
  const delivered = await eventually(async () => {
    const rows = await k.appSql<{ response: string }>(
      a.orgId,
      `select a.response from webhook_attempts a join webhook_deliveries d on d.id = a.delivery_id
        where d.event_id = any(?::uuid[]) and d.status = 'delivered'`,
      [`{${adaEvent},${bobEvent}}`],
    )
    return rows.length === 2 && rows
  })
  t.ok(
    delivered.some((r) => r.response.includes(ada.phone)),
    "before: the receiver's answer stored with the attempt holds her phone number",
  )
  // Tenant A's rows as text: where Ada could be copied.
  const tenantText = async (orgId: string) => {
    const rows = await k.ownerSql<{ text: string }>(
      `select data::text as text from plugin_records where tenant_id = ?::uuid
         union all select coalesce(input::text, '') || coalesce(transcript::text, '') || logs::text from plugin_invocations where tenant_id = ?::uuid
         union all select coalesce(prompt, '') || coalesce(answer, '') from ai_records where tenant_id = ?::uuid
         union all select data::text from audit_log where tenant_id = ?::uuid
         union all select data::text from events where tenant_id = ?::uuid
         union all select coalesce(response, '') || coalesce(error, '') from webhook_attempts where tenant_id = ?::uuid`,
      [orgId, orgId, orgId, orgId, orgId, orgId],
    )
    return rows.map((r) => r.text).join('\n')
  }
  const before = await tenantText(a.orgId)
  t.ok(before.includes(ada.name), 'before: the name is in the AI record')
  t.ok(before.includes(ada.phone), 'before: the phone number is in the audit payload')
  const eventData = async (orgId: string, id: string) =>
    (await k.appSql<{ data: Record<string, unknown> }>(orgId, 'select data from events where id = ?::uuid', [id]))[0]!
      .data
  t.match(await eventData(a.orgId, adaEvent), { contact: { name: ada.name } }, 'before: the event carries her name')
  const crmRow = await k.ownerSql<{ data: Record<string, unknown> }>(
    'select data from plugin_records where id = ?::uuid',
    [planted.crm.id],
  )
  const adaToken = crmRow[0]!.data.email as string
  t.match(adaToken, /^bi1\./, 'the e-mail is encrypted at rest, with its blind-index token')

  await t.test('personal values never reach log lines, inputs or transcripts', async (t) => {
    const seen: unknown[] = []
    const stop = ctx.plugins.onInvocation((rec) => seen.push(rec))
    t.teardown(stop)
    const carol = await plant(k, a.token, '@acme/crm', {
      email: 'carol@example.test',
      name: 'Carol Shaw',
      phone: '+1 555 0100 777',
      tier: 'silver',
    })
    await ctx.plugins.recorder.flush()
    const [row] = await k.ownerSql<{ logs: unknown; text: string }>(
      `select logs, coalesce(input::text, '') || transcript::text || logs::text as text from plugin_invocations
          where tenant_id = ?::uuid and transcript::text like ?`,
      [a.orgId, `%${carol.id}%`],
    )
    t.ok(row, 'the invocation that wrote her record was recorded')
    for (const v of ['Carol Shaw', '+1 555 0100 777', 'carol@example.test'])
      t.notOk(row!.text.includes(v), `"${v}" is not in the stored record of the invocation`)
    t.match(
      row!.logs,
      [
        {
          message: 'record created',
          fields: { record: { name: '[personal]', phone: '[personal]', tier: 'silver' } },
        },
      ],
      'the plugin logged the record: its personal fields are masked, the rest kept',
    )
    const streamed = JSON.stringify(seen)
    t.ok(streamed.includes('record created'), 'the live stream (trellis-plugin dev) got the line')
    t.notOk(streamed.includes('Carol Shaw'), 'masked there too')
    // An invocation recorded before masking existed, with her values in the clear: erasure finds it.
    await k.appSql(
      a.orgId,
      `insert into plugin_invocations (id, installation_id, plugin, version, entry_kind, entry_name, caller_kind, caller_id,
                                         started_at, wall_ms, cpu_ms, host_calls, outcome, logs)
         select gen_random_uuid(), id, plugin, '1.0.0', 'route', 'POST /:collection', 'user', 'x', now(), 1, 1, 1, 'ok', ?::jsonb
           from plugin_installations where plugin = '@acme/crm'`,
      [JSON.stringify([{ level: 'info', message: `called ${ada.phone}`, time: new Date().toISOString() }])],
    )
  })

  await t.test('refusals write nothing', async (t) => {
    const forbidden = await k.req('POST', '/v1/governance/erasures', {
      token: member.token,
      body: { subjectKind: 42 },
    })
    t.equal(forbidden.status, 403, 'a user without governance.manage is refused before validation')
    t.equal(forbidden.body.code, 'AUTH_ERR_FORBIDDEN')
    const unknown = await k.req('POST', '/v1/governance/erasures', {
      token: a.token,
      body: { subjectKind: 'supplier', identifier: ada.email },
    })
    t.equal(unknown.status, 404)
    t.equal(unknown.body.code, 'GOV_ERR_SUBJECT_KIND_UNKNOWN')
    const invalid = await k.req('POST', '/v1/governance/erasures', {
      token: a.token,
      body: { subjectKind: 'contact', identifier: '' },
    })
    t.equal(invalid.body.code, 'KRN_ERR_VALIDATION_FAILED')
    t.same(await k.ownerSql('select id from erasures'), [], 'no erasure recorded')
    t.equal((await readBack(k, a.token, '@acme/crm', planted.crm.id)).body.name, ada.name, 'nothing erased')
    const notFound = await k.req('GET', '/v1/governance/erasures/0190a000-0000-7000-8000-000000000000', {
      token: a.token,
    })
    t.equal(notFound.body.code, 'GOV_ERR_ERASURE_NOT_FOUND')
  })

  await t.test('one request erases every copy across three plugins', async (t) => {
    const r = await k.req('POST', '/v1/governance/erasures', {
      token: a.token,
      body: { subjectKind: 'contact', identifier: ada.email },
    })
    t.equal(r.status, 201, JSON.stringify(r.body))
    const report = r.body
    t.same(
      report.plugins.map((p: { plugin: string; collection: string; records: string[]; fields: string[] }) => [
        p.plugin,
        p.collection,
        p.records,
        [...p.fields].sort(),
      ]),
      [
        ['@acme/billing', 'invoices', [planted.billing.id], ['billingAddress', 'customerEmail']],
        ['@acme/crm', 'contacts', [planted.crm.id], ['email', 'name', 'phone']],
        ['@acme/helpdesk', 'tickets', [planted.helpdesk.id], ['body', 'requester']],
      ],
      'the report lists what was erased where',
    )
    t.equal(report.kernel.invocationLogs, 1, 'the one invocation record holding her values in the clear')
    t.equal(report.kernel.aiInteractions, 1)
    t.equal(report.kernel.eventPayloads, 1, 'the event that shared her')
    t.equal(report.kernel.webhookAttempts, 1, 'the attempt whose stored answer echoed her')
    t.equal(report.kernel.auditPayloads, 1)
    t.equal(report.kernel.auditUnsealed, 0, 'pending entries were sealed first')

    const crm = await readBack(k, a.token, '@acme/crm', planted.crm.id)
    t.equal(crm.status, 200)
    t.same(
      Object.keys(crm.body)
        .filter((f) => !['id', 'version', 'createdAt', 'updatedAt'].includes(f))
        .sort(),
      ['tier'],
      'only the internal field is left',
    )
    t.same((await readBack(k, a.token, '@acme/billing', planted.billing.id)).body.amount, '120.00')
    t.notOk('body' in (await readBack(k, a.token, '@acme/helpdesk', planted.helpdesk.id)).body)

    const after = await tenantText(a.orgId)
    for (const v of ADA_VALUES) t.notOk(after.includes(v), `"${v}" is nowhere in tenant A's rows`)
    t.notOk(after.includes(adaToken), 'nor is her blind-index token')
    const ciphertexts = await k.ownerSql(
      `select id from plugin_records where id = any(?::uuid[]) and data::text like '%$e:%'`,
      [`{${[planted.crm.id, planted.billing.id, planted.helpdesk.id].join(',')}}`],
    )
    t.same(ciphertexts, [], 'no ciphertext left in her records')

    t.same(await eventData(a.orgId, adaEvent), {}, 'her event is kept with its payload emptied')
    t.match(await eventData(a.orgId, bobEvent), { contact: { name: bob.name } }, "Bob's event keeps its payload")
    t.match(
      await eventData(b.orgId, adaEventInB),
      { contact: { name: ada.name } },
      "tenant B's event about her is B's to erase",
    )
    const deliveries = await k.req('GET', `/v1/webhooks/${hook.body.id}/deliveries`, { token: a.token })
    t.notOk(JSON.stringify(deliveries.body).includes(ada.phone), 'the delivery log no longer shows her values')
    t.ok(JSON.stringify(deliveries.body).includes(bob.phone), "and still shows Bob's")
    t.equal((await readBack(k, a.token, '@acme/crm', planted.bobCrm.id)).body.name, bob.name, 'Bob keeps his data')
    t.equal((await readBack(k, a.token, '@acme/billing', planted.bobBilling.id)).body.billingAddress, '1 Other St')
    t.match(
      (await readBack(k, b.token, '@acme/crm', planted.inB.id)).body,
      { email: ada.email, name: ada.name },
      "tenant B's record of the same person is B's to erase",
    )
  })

  await t.test('a tenant may only empty event payloads and attempt answers, nothing else', async (t) => {
    await t.rejects(
      k.appSql(a.orgId, `update events set data = '{"forged":true}'::jsonb where id = ?::uuid`, [bobEvent]),
      'rewriting an event payload is refused',
    )
    await t.rejects(
      k.appSql(a.orgId, `update events set type = 'crm.contact.forged' where id = ?::uuid`, [bobEvent]),
      'changing its type is refused',
    )
    await t.rejects(
      k.appSql(a.orgId, `update webhook_attempts set response = 'forged'`),
      "writing an attempt's answer is refused",
    )
    await t.rejects(
      k.appSql(a.orgId, 'update webhook_attempts set status_code = 500'),
      'changing its status is refused',
    )
    const emptied = await k.appSql(b.orgId, `update events set data = '{}'::jsonb where id = ?::uuid returning id`, [
      adaEvent,
    ])
    t.same(emptied, [], "tenant B cannot reach A's events")
    t.match(await eventData(a.orgId, bobEvent), { contact: { name: bob.name } }, "Bob's event is unchanged")
  })

  await t.test('audited without the identifier; the chain verifies; the report is kept', async (t) => {
    await ctx.sealer.sealAll()
    const entries = await k.appSql<{ data: Record<string, unknown>; target_id: string }>(
      a.orgId,
      `select data, target_id from audit_log where action = 'governance.subject.erased'`,
    )
    t.equal(entries.length, 1)
    t.match(entries[0]!.data, { subjectKind: 'contact', records: [{ plugin: '@acme/billing', records: 1 }] })
    // (Her values, not the letters "ada": the entry's uuids are hexadecimal and may hold those.)
    const entryText = JSON.stringify(entries[0])
    t.notOk(
      ADA_VALUES.some((v) => entryText.includes(v)),
      'no identifier or value of hers in the audit entry',
    )
    const chain = await verifyChain(ctx.db, a.orgId)
    t.equal(chain.ok, true, JSON.stringify(chain.brokenAt))
    const erased = await k.appSql<{ n: number }>(
      a.orgId,
      `select count(*)::int as n from audit_log where erased_at is not null and action = 'crm.contact.exported'`,
    )
    t.equal(erased[0]!.n, 1, 'the payload that named her was erased, the entry kept')
    const listed = await k.req('GET', '/v1/audit?action=crm.contact.exported', { token: a.token })
    t.equal(listed.body.items.length, 1)
    t.same(listed.body.items[0].data, {}, 'the audit log shows the entry with its payload gone')
    t.match(listed.body.items[0].erasedAt, /^\d{4}-/, 'and when it was erased')

    const list = await k.req('GET', '/v1/governance/erasures', { token: a.token })
    t.equal(list.body.items.length, 1)
    const one = await k.req('GET', `/v1/governance/erasures/${entries[0]!.target_id}`, { token: a.token })
    t.equal(one.status, 200)
    t.equal(one.body.plugins.length, 3)
    t.same((await k.req('GET', '/v1/governance/erasures', { token: b.token })).body.items, [], "B sees none of A's")
    const stored = await k.ownerSql<{ text: string }>('select row_to_json(e)::text as text from erasures e')
    t.notOk(stored[0]!.text.includes(ada.email), 'the stored report names her only by a keyed token')

    const again = await k.req('POST', '/v1/governance/erasures', {
      token: a.token,
      body: { subjectKind: 'contact', identifier: ada.email },
    })
    t.equal(again.status, 201)
    t.equal(
      again.body.plugins.reduce((n: number, p: { records: string[] }) => n + p.records.length, 0),
      0,
      'erasing again finds nothing left',
    )
  })

  await t.test("one tenant's erasure never reaches another's rows", async (t) => {
    const bobInA = await readBack(k, a.token, '@acme/crm', planted.bobCrm.id)
    const r = await k.req('POST', '/v1/governance/erasures', {
      token: b.token,
      body: { subjectKind: 'contact', identifier: bob.email },
    })
    t.equal(r.status, 201)
    t.same(
      r.body.plugins.map((p: { records: string[] }) => p.records),
      [[]],
      'B has no Bob: nothing found, although A has',
    )
    t.same((await readBack(k, a.token, '@acme/crm', planted.bobCrm.id)).body, bobInA.body, "A's Bob untouched")
    const own = await k.req('POST', '/v1/governance/erasures', {
      token: b.token,
      body: { subjectKind: 'contact', identifier: ada.email },
    })
    t.same(
      own.body.plugins.map((p: { records: string[] }) => p.records),
      [[planted.inB.id]],
      'B erases its own record of Ada',
    )
    t.notOk('name' in (await readBack(k, b.token, '@acme/crm', planted.inB.id)).body)
  })
}
