// The invocation recorder writes every record it was given, field for field, with one statement
// text whatever the batch size: the kernel keeps each text as a named prepared statement on every
// connection, so a text per batch size would pile up to 500 of them per connection.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { Database, Tx } from '../src/db/database.js'
import { InvocationRecorder, type InvocationRecord } from '../src/plugins/invocation-recorder.js'
import { DB_KINDS, createTenantWithAdmin, startTestKernel } from './helpers/test-kernel.js'

for (const kind of DB_KINDS)
  t.test(`on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind)
    const a = await createTenantWithAdmin(k, 'recorder-a')
    const b = await createTenantWithAdmin(k, 'recorder-b')

    // The kernel's database, with every statement text the recorder sends noted on the way.
    const texts = new Set<string>()
    const db = k.kernel.ctx.db
    const spy = Object.create(db) as Database
    spy.inOrg = (orgId, fn, role) =>
      db.inOrg(
        orgId,
        (tx, status) => {
          const seen: Tx = {
            ...tx,
            sql: (text, params) => {
              texts.add(text)
              return tx.sql(text, params)
            },
          }
          return fn(seen, status)
        },
        role,
      )
    const warnings: unknown[] = []
    const logger = { warn: (...args: unknown[]) => warnings.push(args) } as unknown as Logger
    const recorder = new InvocationRecorder(spy, logger, 60_000)

    const installation = randomUUID()
    const record = (tenantId: string, n: number, extra: Partial<InvocationRecord> = {}): InvocationRecord => ({
      id: randomUUID(),
      tenantId,
      installationId: installation,
      plugin: '@acme/shop',
      version: '1.2.3',
      entryKind: 'route',
      entryName: `GET /items/${n}`,
      callerKind: 'user',
      callerId: 'u-1',
      startedAt: new Date(Date.UTC(2026, 11, 6, 12, 0, 0, n)).toISOString(),
      wallMs: 12.5,
      cpuMs: 3.25,
      hostCalls: n,
      outcome: 'ok',
      errorCode: null,
      logs: [],
      ...extra,
    })
    const rows = (ids: string[]) =>
      k.ownerSql<Record<string, any>>(
        `select id::text as id, tenant_id::text as tenant_id, installation_id::text as installation_id, plugin, version,
           entry_kind, entry_name, caller_kind, caller_id, started_at, wall_ms, cpu_ms, host_calls, outcome,
           error_code, logs, input, transcript
         from plugin_invocations where id::text in (${ids.map(() => '?').join(', ')}) order by started_at`,
        ids,
      )

    t.test('one record, with everything a record can carry, reads back as it was recorded', async (t) => {
      const rec = record(a.orgId, 1, {
        outcome: 'error',
        errorCode: 'PLG_ERR_TIMEOUT',
        logs: [
          {
            level: 'info',
            message: 'said "hi" \\ to ünïcode ✓',
            fields: { n: 1, nested: { ok: true } },
            time: '2026-12-06T12:00:00.001Z',
          },
          { level: 'warn', message: "it's fine", time: '2026-12-06T12:00:00.002Z' },
        ],
        input: { order: 'P-1', lines: [{ sku: 'A', quantity: 2 }] },
        transcript: {
          calls: [{ op: 'data.find', args: { collection: 'items' }, ok: true, result: 3, ms: 1.5 }],
          omitted: 0,
        },
      })
      recorder.record(rec)
      await recorder.flush()
      const [got] = await rows([rec.id])
      t.match(got, {
        id: rec.id,
        tenant_id: a.orgId,
        installation_id: installation,
        plugin: '@acme/shop',
        version: '1.2.3',
        entry_kind: 'route',
        entry_name: 'GET /items/1',
        caller_kind: 'user',
        caller_id: 'u-1',
        wall_ms: 12.5,
        cpu_ms: 3.25,
        host_calls: 1,
        outcome: 'error',
        error_code: 'PLG_ERR_TIMEOUT',
      })
      t.equal(new Date(got!.started_at).toISOString(), rec.startedAt)
      t.same(got!.logs, rec.logs)
      t.same(got!.input, rec.input)
      t.same(got!.transcript, rec.transcript)
      t.same(warnings, [])
    })

    t.test('a record without input or transcript keeps neither', async (t) => {
      const rec = record(a.orgId, 2)
      recorder.record(rec)
      await recorder.flush()
      const [got] = await rows([rec.id])
      t.equal(got!.input, null)
      t.equal(got!.transcript, null)
      t.equal(got!.error_code, null)
      t.same(got!.logs, [])
    })

    t.test('batches of 2, 3 and 501 records over two tenants: every record written, one statement text', async (t) => {
      for (const [n, tenants] of [
        [2, [a.orgId]],
        [3, [a.orgId, b.orgId]],
        [501, [a.orgId]],
      ] as const) {
        const recs = Array.from({ length: n }, (_, i) => record(tenants[i % tenants.length]!, i))
        for (const r of recs) recorder.record(r)
        // Written again (a retried flush): kept once.
        if (n === 2) recorder.record(recs[0]!)
        await recorder.flush()
        const got = await rows(recs.map((r) => r.id))
        t.equal(got.length, n, `${n} records, each once`)
        t.same(
          got.map((g) => [g.id, g.tenant_id, g.host_calls]),
          recs.map((r) => [r.id, r.tenantId, r.hostCalls]),
          `${n} records, each in its own tenant`,
        )
      }
      t.same(warnings, [])
      t.equal(texts.size, 1, 'batches of 1, 2, 3 and 500 records are one statement')
    })
  })
