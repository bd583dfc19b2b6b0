// The collections data service: plugin records in plugin_records (jsonb, row-level security),
// the query compiler, keyset cursors, declared indexes — and conformance with the SDK's
// in-memory test host, whose semantics plugin authors test against.
import t from 'tap'
import { collection, createTestHost, definePlugin, type PluginManifest, type TestHost } from '@trellis/plugin-sdk'
import { DB_KINDS, startTestKernel, createTenantWithAdmin, type TestKernel } from './helpers/test-kernel.js'
import { eventually } from './helpers/receiver.js'
import { positional, type Tx } from '../src/db/database.js'
import {
  CollectionStore,
  dropPluginData,
  ensureIndexes,
  type CollectionRef,
  type FindQuery,
  type StoredRecord,
} from '../src/plugins/data/index.js'

const PLUGIN = '@acme/parts'
const OTHER = '@acme/other'

const partSchema = {
  type: 'object',
  required: ['sku', 'qty'],
  properties: {
    sku: { type: 'string', minLength: 1 },
    qty: { type: 'integer', minimum: 0 },
    tags: { type: 'array', items: { type: 'string' } },
    note: { type: ['string', 'null'] },
  },
}
const parts: CollectionRef = { plugin: PLUGIN, name: 'parts', schema: partSchema }
const uniqueParts: CollectionRef = {
  plugin: PLUGIN,
  name: 'uparts',
  schema: partSchema,
  indexes: [{ fields: ['sku'], unique: true }],
}
const free = (plugin: string, name: string): CollectionRef => ({ plugin, name, schema: { type: 'object' } })

/** A deterministic PRNG (mulberry32). */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** Well-typed records: each field has one JSON type (or is absent / null where noted). */
function dataset(count: number, seed: number): Array<Record<string, unknown>> {
  const r = rng(seed)
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!
  const out: Array<Record<string, unknown>> = []
  for (let n = 0; n < count; n++) {
    const rec: Record<string, unknown> = {
      n,
      name: `${pick(['ACME', 'Acme', 'bolt', 'nut', 'washer', 'A_B', 'A%B'])}-${Math.floor(r() * 20)}`,
      price: Math.round(r() * 10000) / 100,
    }
    if (r() < 0.8) rec.qty = Math.floor(r() * 10) // absent otherwise (never null: the test host orders null and absent inconsistently)
    rec.active = r() < 0.5
    rec.tags = [pick(['red', 'blue', 'green']), pick(['big', 'small'])].slice(0, 1 + Math.floor(r() * 2))
    rec.note = r() < 0.3 ? null : pick(['fragile', 'heavy', 'keep dry', 'FRAGILE'])
    rec.grade = pick(['a', 'b', 'c'])
    out.push(rec)
  }
  return out
}

// Queries run against both stores; field `n` identifies a record across them.
const CONFORMANCE: Array<FindQuery & { label?: string }> = [
  {},
  { where: { qty: 3 } },
  { where: { qty: { eq: 3 } } },
  { where: { qty: { ne: 3 } } },
  { where: { qty: null } },
  { where: { qty: { ne: null } } },
  { where: { note: null } },
  { where: { note: { eq: null } } },
  { where: { qty: { in: [1, 2, 9] } } },
  { where: { qty: { in: [1, null] } } },
  { where: { qty: { in: [] } } },
  { where: { qty: { lt: 3 } } },
  { where: { qty: { lte: 3 } } },
  { where: { qty: { gt: 7 } } },
  { where: { qty: { gte: 7 } } },
  { where: { qty: { gte: 2, lt: 5 } } },
  { where: { price: { gt: 25.5, lte: 80 } } },
  { where: { name: { lt: 'bolt' } } },
  { where: { name: { gte: 'nut' } } },
  { where: { name: { prefix: 'ACME' } } },
  { where: { name: { prefix: 'A_' } } },
  { where: { name: { prefix: 'A%' } } },
  { where: { name: { prefix: '' } } },
  { where: { name: { contains: 'cme' } } },
  { where: { name: { contains: '%' } } },
  { where: { tags: { contains: 'red' } } },
  { where: { tags: { contains: 'small' }, active: true } },
  { where: { tags: ['red', 'big'] } },
  { where: { tags: { eq: ['blue'] } } },
  { where: { note: { contains: 'FRAG' } } },
  { where: { active: false } },
  { where: { active: { gt: false } } },
  { where: { missing: null } },
  { where: { missing: { ne: 1 } } },
  { where: { missing: { gt: 0 } } },
  { where: { version: 1 } },
  { where: { version: { gte: 2 } } },
  { where: { or: [{ qty: 0 }, { name: { prefix: 'nut' } }] } },
  { where: { and: [{ qty: { gte: 2 } }, { or: [{ active: true }, { grade: 'c' }] }], price: { lt: 90 } } },
  {
    where: {
      or: [{ and: [{ grade: 'a' }, { qty: { lt: 5 } }] }, { and: [{ grade: 'b' }, { tags: { contains: 'green' } }] }],
    },
  },
  { sort: [{ field: 'qty' }] },
  { sort: [{ field: 'qty', direction: 'desc' }] },
  { sort: [{ field: 'name' }, { field: 'qty', direction: 'desc' }] },
  { sort: [{ field: 'active', direction: 'desc' }, { field: 'price' }] },
  { sort: [{ field: 'grade', direction: 'desc' }, { field: 'qty' }, { field: 'name', direction: 'desc' }] },
  { sort: [{ field: 'id', direction: 'desc' }] },
  { sort: [{ field: 'missing', direction: 'desc' }] },
  { where: { qty: { gte: 1 } }, sort: [{ field: 'price', direction: 'desc' }], limit: 10 },
  { where: { note: { ne: null } }, sort: [{ field: 'note' }, { field: 'n', direction: 'desc' }], limit: 7 },
]

async function allPages(
  find: (q: FindQuery) => Promise<{ items: StoredRecord[]; nextCursor: string | null }>,
  q: FindQuery,
): Promise<{ items: StoredRecord[]; pages: number }> {
  const items: StoredRecord[] = []
  let cursor: string | undefined
  let pages = 0
  for (;;) {
    const page = await find(cursor === undefined ? q : { ...q, cursor })
    pages++
    items.push(...page.items)
    if (page.nextCursor === null) return { items, pages }
    cursor = page.nextCursor
    if (pages > 5000) throw new Error('runaway pagination')
  }
}

const ns = (items: StoredRecord[]) => items.map((r) => r.n as number)

function memoryHost(): TestHost {
  const manifest: PluginManifest = {
    name: PLUGIN,
    version: '1.0.0',
    engines: { trellis: '^0.1.0' },
    capabilities: ['data'],
    collections: { items: { schema: { type: 'object' } } },
  }
  return createTestHost(definePlugin({ manifest, collections: { items: collection() } }))
}

/** A Tx that records the SQL it runs (to explain it). */
function recording(tx: Tx, log: Array<{ text: string; params: unknown[] }>): Tx {
  return {
    ...tx,
    orgs: tx.orgs,
    useOrg: tx.useOrg,
    sql: (text, params = []) => (log.push({ text, params }), tx.sql(text, params)),
    sqlOnce: (text, params = []) => (log.push({ text, params }), tx.sqlOnce(text, params)),
  }
}

for (const kind of DB_KINDS) {
  t.test(`plugin collections on ${kind}`, async (t) => {
    const k: TestKernel = await startTestKernel(t, kind)
    const a = await createTenantWithAdmin(k, `pd-a-${kind}`)
    const b = await createTenantWithAdmin(k, `pd-b-${kind}`)
    const store = new CollectionStore()
    const inA = <T>(fn: (tx: Tx) => Promise<T>) => k.kernel.ctx.db.inOrg(a.orgId, fn)
    const inB = <T>(fn: (tx: Tx) => Promise<T>) => k.kernel.ctx.db.inOrg(b.orgId, fn)
    const rowsOf = async (plugin: string, collection: string) =>
      k.ownerSql(
        'select tenant_id, id, version, data, updated_at from plugin_records where plugin = ? and collection = ? order by id',
        [plugin, collection],
      )
    await inA((tx) => ensureIndexes(tx, PLUGIN, { uparts: { indexes: uniqueParts.indexes } }))

    t.test('insert, get, update, delete as a plugin sees them', async (t) => {
      const ins = await inA((tx) => store.insert(tx, parts, { sku: 'A-1', qty: 2, tags: ['x'] }))
      t.match(ins, { sku: 'A-1', qty: 2, tags: ['x'], version: 1 })
      t.match(ins.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a UUIDv7')
      t.equal(ins.createdAt, ins.updatedAt)
      t.equal(new Date(ins.createdAt).toISOString(), ins.createdAt)
      t.same(await inA((tx) => store.get(tx, parts, ins.id)), ins, 'get returns what insert returned')

      const up = await inA((tx) => store.update(tx, parts, ins.id, { qty: 5, note: 'n' }, 1))
      t.match(up, { id: ins.id, sku: 'A-1', qty: 5, note: 'n', tags: ['x'], version: 2, createdAt: ins.createdAt })
      t.ok(up.updatedAt >= ins.updatedAt)
      t.same(await inA((tx) => store.get(tx, parts, ins.id)), up)

      await t.rejects(
        inA((tx) => store.update(tx, parts, ins.id, { qty: 6 }, 1)),
        { code: 'KRN_ERR_CONFLICT', status: 409 },
        'stale version',
      )
      await t.rejects(
        inA((tx) => store.update(tx, parts, ins.id, { qty: 6 }, 3)),
        { code: 'KRN_ERR_CONFLICT' },
        'future version',
      )
      await t.rejects(
        inA((tx) => store.update(tx, parts, ins.id, { qty: 6 }, 1.5)),
        { code: 'KRN_ERR_CONFLICT' },
        'a version that cannot be',
      )
      await t.rejects(
        inA((tx) => store.update(tx, parts, ins.id, { qty: 6 }, 2 ** 40)),
        { code: 'KRN_ERR_CONFLICT' },
        'a version beyond int',
      )
      const absent = '0190f5c4-0000-7000-8000-000000000000'
      await t.rejects(
        inA((tx) => store.update(tx, parts, absent, { qty: 6 }, 1)),
        { code: 'KRN_ERR_NOT_FOUND', status: 404 },
      )
      await t.rejects(
        inA((tx) => store.update(tx, parts, 'not-a-uuid', { qty: 6 }, 1)),
        { code: 'KRN_ERR_NOT_FOUND' },
      )
      t.equal(await inA((tx) => store.get(tx, parts, absent)), null)
      t.equal(await inA((tx) => store.get(tx, parts, 'not-a-uuid')), null)
      t.equal(
        await inA((tx) => store.get(tx, parts, ins.id.toUpperCase())),
        null,
        'ids are the lower-case strings the kernel returns, like the test host',
      )
      t.equal((await rowsOf(PLUGIN, 'parts'))[0].version, 2, 'failed updates changed nothing')

      t.equal(await inA((tx) => store.delete(tx, parts, ins.id)), true)
      t.equal(await inA((tx) => store.delete(tx, parts, ins.id)), false)
      t.equal(await inA((tx) => store.delete(tx, parts, "'; drop table plugin_records; --")), false)
      t.equal(await inA((tx) => store.get(tx, parts, ins.id)), null)
      t.equal((await rowsOf(PLUGIN, 'parts')).length, 0)
    })

    t.test("each operation is one round trip (three for an update that changes a unique index's values)", async (t) => {
      const ref = free(PLUGIN, 'trips')
      const counts = await inA(async (tx) => {
        const log: Array<{ text: string; params: unknown[] }> = []
        const rtx = recording(tx, log)
        const count = async (fn: () => Promise<unknown>) => {
          const before = log.length
          await fn()
          return log.length - before
        }
        const rec = await store.insert(rtx, ref, { v: 1 })
        return {
          insert: log.length,
          get: await count(() => store.get(rtx, ref, rec.id)),
          update: await count(() => store.update(rtx, ref, rec.id, { v: 2 }, 1)),
          find: await count(() =>
            store.find(rtx, ref, { where: { v: { gte: 1 } }, sort: [{ field: 'v', direction: 'desc' }] }),
          ),
          delete: await count(() => store.delete(rtx, ref, rec.id)),
          uniqueInsert: await count(() =>
            store.insert(rtx, { ...uniqueParts, name: 'utrips' }, { sku: 'trip', qty: 1 }),
          ),
          uniqueUpdate: await count(async () => {
            const r = await store.find(rtx, { ...uniqueParts, name: 'utrips' }, { where: { sku: 'trip' } })
            log.pop()
            return store.update(rtx, { ...uniqueParts, name: 'utrips' }, r.items[0]!.id, { qty: 2 }, 1)
          }),
          uniqueKeyUpdate: await count(async () => {
            const r = await store.find(rtx, { ...uniqueParts, name: 'utrips' }, { where: { sku: 'trip' } })
            log.pop()
            return store.update(rtx, { ...uniqueParts, name: 'utrips' }, r.items[0]!.id, { sku: 'trap' }, 2)
          }),
        }
      })
      // An update that leaves every unique index's values alone cannot conflict: no savepoint.
      t.same(counts, {
        insert: 1,
        get: 1,
        update: 1,
        find: 1,
        delete: 1,
        uniqueInsert: 1,
        uniqueUpdate: 1,
        uniqueKeyUpdate: 3,
      })
    })

    t.test("a find's text is its shape and names, never a value: one prepared statement per shape", async (t) => {
      const ref = free(PLUGIN, 'shapes')
      const texts = await inA(async (tx) => {
        const log: Array<{ text: string; params: unknown[] }> = []
        const rtx = recording(tx, log)
        const sort = [{ field: 'v', direction: 'desc' as const }]
        await store.find(rtx, ref, { where: { kind: 'secret-a', v: { gte: 1 } }, sort, limit: 7 })
        await store.find(rtx, ref, { where: { kind: 'secret-b', v: { gte: 2 } }, sort, limit: 9 })
        await store.find(rtx, ref, { where: { "it's": 'x' } })
        return log.map((l) => l.text)
      })
      t.equal(texts[0], texts[1], 'the same shape, the same text')
      t.notMatch(texts[0]!, /secret/, 'values are parameters')
      t.match(texts[0]!, /plugin = '@acme\/parts' and collection = 'shapes'/)
      t.match(texts[0]!, /data -> 'kind'/)
      t.notMatch(texts[2]!, /it's/, 'a name that is not a plain identifier stays a parameter')
    })

    t.test('writes behave like the in-memory test host, error for error', async (t) => {
      const memory = createTestHost(
        definePlugin({
          manifest: {
            name: PLUGIN,
            version: '1.0.0',
            engines: { trellis: '^0.1.0' },
            capabilities: ['data'],
            collections: { parts: { schema: partSchema } },
          } as PluginManifest,
          collections: { parts: collection() },
        }),
      )
      const ref = { ...parts, name: 'parts-conf' }
      const steps: Array<(ids: string[]) => [string, ...unknown[]]> = [
        () => ['insert', { sku: 'C-1', qty: 1, tags: ['a'] }],
        () => ['insert', { sku: 'C-2', qty: 2, id: 'ignored', version: 5 }],
        () => ['insert', { sku: 3, qty: 1 }],
        () => ['insert', { qty: 1 }],
        (ids) => ['update', ids[0], { qty: 5, note: 'x' }, 1],
        (ids) => ['update', ids[0], { qty: 6 }, 1],
        (ids) => ['update', ids[0], { qty: -1 }, 2],
        (ids) => ['update', ids[0], { sku: 'C-1b', createdAt: 'x', version: 1 }, 2],
        (ids) => ['update', ids[1], { tags: ['b'], note: null }, 1],
        () => ['update', '0190f5c4-0000-7000-8000-000000000000', { qty: 1 }, 1],
        (ids) => ['get', ids[1]],
        (ids) => ['delete', ids[1]],
        (ids) => ['delete', ids[1]],
        (ids) => ['get', ids[1]],
        (ids) => ['get', ids[0]],
      ]
      const run = async (impl: 'sql' | 'memory') => {
        const ids: string[] = []
        const out: unknown[] = []
        for (const step of steps) {
          const [op, ...args] = step(ids)
          let result: unknown
          try {
            if (impl === 'sql') {
              result = await inA<unknown>((tx) => {
                if (op === 'insert') return store.insert(tx, ref, args[0] as never)
                if (op === 'update')
                  return store.update(tx, ref, args[0] as string, args[1] as never, args[2] as number)
                if (op === 'get') return store.get(tx, ref, args[0] as string)
                return store.delete(tx, ref, args[0] as string)
              })
            } else {
              const collection = 'parts'
              result =
                op === 'insert'
                  ? await memory.call('data.insert', { collection, record: args[0] })
                  : op === 'update'
                    ? await memory.call('data.update', {
                        collection,
                        id: args[0],
                        patch: args[1],
                        expectedVersion: args[2],
                      })
                    : await memory.call(`data.${op}`, { collection, id: args[0] })
            }
          } catch (err) {
            result = {
              error: (err as { code: string }).code,
              pointers: ((err as { details?: { problems?: Array<{ pointer: string }> } }).details?.problems ?? []).map(
                (p) => p.pointer,
              ),
            }
          }
          if (op === 'insert' && result && typeof result === 'object' && 'id' in result)
            ids.push((result as StoredRecord).id)
          // Ids and times differ between the stores; everything else must not.
          out.push(
            result && typeof result === 'object' && 'id' in result
              ? { ...(result as object), id: '*', createdAt: '*', updatedAt: '*' }
              : result,
          )
        }
        return out
      }
      const sql = await run('sql')
      const mem = await run('memory')
      t.same(sql, mem)
      t.ok(sql.some((r) => (r as { error?: string })?.error === 'KRN_ERR_CONFLICT'))
      t.ok(sql.some((r) => (r as { error?: string })?.error === 'KRN_ERR_NOT_FOUND'))
      t.ok(sql.some((r) => (r as { error?: string })?.error === 'KRN_ERR_VALIDATION_FAILED'))
    })

    t.test(
      'concurrent updates of one version: one wins, the other gets a conflict',
      { skip: kind === 'pglite' && 'PGlite serves one connection' },
      async (t) => {
        const ref = free(PLUGIN, 'race')
        const rec = await inA((tx) => store.insert(tx, ref, { v: 0 }))
        let release!: () => void
        const held = new Promise<void>((r) => (release = r))
        let updated!: () => void
        const firstUpdated = new Promise<void>((r) => (updated = r))
        const first = inA(async (tx) => {
          const r = await store.update(tx, ref, rec.id, { v: 1 }, 1)
          updated()
          await held
          return r
        })
        // Ordered by signals, not sleeps: the first holds the row, then the second waits for it.
        await firstUpdated
        const lockWaits = async () =>
          (
            await k.ownerSql(
              `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
            )
          )[0].n as number
        t.equal(await lockWaits(), 0)
        const second = inA((tx) => store.update(tx, ref, rec.id, { v: 2 }, 1)).catch((e) => e)
        await eventually(async () => (await lockWaits()) === 1, 10_000)
        release()
        t.match(await first, { v: 1, version: 2 })
        const err = await second
        t.equal(err.code, 'KRN_ERR_CONFLICT')
        t.match(err.message, /concurrent/)
        t.match(await inA((tx) => store.get(tx, ref, rec.id)), { v: 1, version: 2 })
      },
    )

    t.test('metadata keys in a record or patch are ignored, as by the test host', async (t) => {
      const ref = free(PLUGIN, 'meta')
      const ins = await inA((tx) =>
        store.insert(tx, ref, { id: 'mine', version: 7, createdAt: 'then', updatedAt: 'now', v: 1 }),
      )
      t.not(ins.id, 'mine')
      t.match(ins, { version: 1, v: 1 })
      t.not(ins.createdAt, 'then')
      const [row] = await rowsOf(PLUGIN, 'meta')
      t.same(row.data, { v: 1 }, 'stored data has no metadata keys')
      const up = await inA((tx) =>
        store.update(tx, ref, ins.id, { id: 'x', version: 99, createdAt: 'x', updatedAt: 'x', v: 2 }, 1),
      )
      t.match(up, { id: ins.id, version: 2, createdAt: ins.createdAt, v: 2 })
      t.same((await rowsOf(PLUGIN, 'meta'))[0].data, { v: 2 })
      const memory = memoryHost()
      const m = (await memory.call('data.insert', {
        collection: 'items',
        record: { id: 'mine', version: 7, v: 1 },
      })) as StoredRecord
      t.match(m, { version: 1, v: 1 })
      t.not(m.id, 'mine', 'the test host agrees')
    })

    t.test(
      'records are validated against the schema on insert and on the merged update; nothing is written on failure',
      async (t) => {
        for (const ref of [parts, uniqueParts]) {
          const out = await inA(async (tx) => {
            const bad = await store.insert(tx, ref, { sku: '', qty: -1 }).catch((e) => e)
            const ok = await store.insert(tx, ref, { sku: `V-${ref.name}`, qty: 1 })
            const badPatch = await store.update(tx, ref, ok.id, { qty: 'many' }, 1).catch((e) => e)
            const missing = await store.update(tx, ref, ok.id, { sku: undefined as never, extra: 1 }, 1).then(
              (r) => r,
              (e) => e,
            )
            const after = await store.get(tx, ref, ok.id)
            const good = await store.update(tx, ref, ok.id, { qty: 3 }, 1).catch((e) => e)
            return { bad, ok, badPatch, missing, after, good }
          })
          t.equal(out.bad.code, 'KRN_ERR_VALIDATION_FAILED', `${ref.name}: insert`)
          t.equal(out.bad.status, 400)
          t.same(out.bad.details.problems.map((p: { pointer: string }) => p.pointer).sort(), ['/qty', '/sku'])
          t.equal(out.badPatch.code, 'KRN_ERR_VALIDATION_FAILED', `${ref.name}: update`)
          t.same(
            out.badPatch.details.problems.map((p: { pointer: string }) => p.pointer),
            ['/qty'],
          )
          t.match(
            out.missing,
            { version: 2, extra: 1, sku: `V-${ref.name}` },
            'an undefined patch value is no change (JSON has no undefined)',
          )
          t.same(out.after, { ...out.missing }, 'the failed update left the record as it was')
          t.equal(out.good.code, 'KRN_ERR_CONFLICT', 'the earlier valid update bumped the version')
          const rows = await rowsOf(PLUGIN, ref.name)
          t.equal(rows.length, 1, `${ref.name}: only the valid insert was written`)
          t.same(rows[0].data, { sku: `V-${ref.name}`, qty: 1, extra: 1 })
          t.equal(rows[0].version, 2)
          t.equal(new Date(rows[0].updated_at).toISOString(), out.missing.updatedAt)
        }
      },
    )

    t.test(
      'a failed update leaves the stored record exactly as it was, and oversized indexed values are refused up front',
      async (t) => {
        for (const ref of [
          { plugin: PLUGIN, name: 'exact', schema: { type: 'object', properties: { n: { type: 'integer' } } } },
          {
            plugin: PLUGIN,
            name: 'uexact',
            schema: { type: 'object', properties: { n: { type: 'integer' } } },
            indexes: [{ fields: ['k'], unique: true }],
          },
        ] as CollectionRef[]) {
          await inA((tx) => ensureIndexes(tx, PLUGIN, { [ref.name]: { indexes: ref.indexes } }))
          const rec = await inA((tx) => store.insert(tx, ref, { n: 1, k: 'a', keep: 'x' }))
          // A number beyond double precision, written directly: only jsonb holds it exactly.
          await k.ownerSql(
            `update plugin_records set data = data || '{"big": 123456789012345678901234567890.5}' where id = ?::uuid`,
            [rec.id],
          )
          const [before] = await k.ownerSql(
            'select data::text as text, version, updated_at::text as at from plugin_records where id = ?::uuid',
            [rec.id],
          )
          const out = await inA(async (tx) => {
            const bad = await store
              .update(tx, ref, rec.id, { n: 'one', added: true, big: 1, keep: null }, 1)
              .catch((e) => e)
            const huge = ref.indexes
              ? await store.update(tx, ref, rec.id, { k: 'x'.repeat(3000) }, 1).catch((e) => e)
              : null
            const hugeInsert = ref.indexes
              ? await store.insert(tx, ref, { k: ['x'.repeat(3000)] }).catch((e) => e)
              : null
            const fine = await store.update(tx, ref, rec.id, { n: 2 }, 1)
            return { bad, huge, hugeInsert, fine }
          })
          t.equal(out.bad.code, 'KRN_ERR_VALIDATION_FAILED', ref.name)
          if (ref.indexes) {
            t.equal(out.huge.code, 'KRN_ERR_VALIDATION_FAILED', `${ref.name}: a value too large for a btree entry`)
            t.same(out.huge.details.problems, [
              { pointer: '/k', message: 'is too large for an indexed field (at most 2000 bytes as JSON)' },
            ])
            t.equal(out.hugeInsert.code, 'KRN_ERR_VALIDATION_FAILED')
          }
          t.equal(out.fine.version, 2, 'the transaction went on')
          // biome-ignore lint/correctness/noPrecisionLoss: the test stores a number JSON cannot hold exactly
          t.equal(out.fine.big, 123456789012345678901234567890.5)
          const [after] = await k.ownerSql('select data::text as text from plugin_records where id = ?::uuid', [rec.id])
          t.equal(
            after.text,
            before.text.replace('"n": 1', '"n": 2'),
            `${ref.name}: every other byte as before, the big number exact`,
          )
          t.match(after.text, /123456789012345678901234567890\.5/)
          t.equal(before.version, 1)
        }
      },
    )

    t.test('schemas with the same $id in two plugins (or two versions) each validate their own records', async (t) => {
      const mine: CollectionRef = {
        plugin: PLUGIN,
        name: 'ided',
        schema: {
          $id: 'https://schemas.example/thing',
          type: 'object',
          required: ['a'],
          properties: { a: { type: 'string' } },
        },
      }
      const theirs: CollectionRef = {
        plugin: OTHER,
        name: 'ided',
        schema: {
          $id: 'https://schemas.example/thing',
          type: 'object',
          required: ['b'],
          properties: { b: { type: 'integer' } },
        },
      }
      const nextVersion: CollectionRef = { ...mine, schema: JSON.parse(JSON.stringify(mine.schema)) }
      const out = await inA(async (tx) => ({
        mine: await store.insert(tx, mine, { a: 'x' }),
        mineBad: await store.insert(tx, mine, { b: 1 }).catch((e) => e.code),
        theirs: await store.insert(tx, theirs, { b: 1 }),
        theirsBad: await store.insert(tx, theirs, { a: 'x' }).catch((e) => e.code),
        next: await store.insert(tx, nextVersion, { a: 'y' }),
      }))
      t.match(out, {
        mine: { a: 'x' },
        mineBad: 'KRN_ERR_VALIDATION_FAILED',
        theirs: { b: 1 },
        theirsBad: 'KRN_ERR_VALIDATION_FAILED',
        next: { a: 'y' },
      })
    })

    t.test('values PostgreSQL cannot store are validation errors, and the transaction goes on', async (t) => {
      const ref = free(PLUGIN, 'odd')
      const out = await inA(async (tx) => {
        const errs = []
        errs.push(await store.insert(tx, ref, { s: 'nul\u0000byte' }).catch((e) => e))
        errs.push(await store.insert(tx, ref, { 'k\u0000': 1 }).catch((e) => e))
        errs.push(await store.insert(tx, ref, { s: 'lone \ud800 surrogate' }).catch((e) => e))
        let deep: unknown = 1
        for (let i = 0; i < 150; i++) deep = [deep]
        errs.push(await store.insert(tx, ref, { deep }).catch((e) => e))
        errs.push(await store.find(tx, ref, { where: { s: 'nul\u0000' } }).catch((e) => e))
        errs.push(await store.find(tx, ref, { where: { s: { prefix: '\udc00' } } }).catch((e) => e))
        const ok = await store.insert(tx, ref, { s: 'emoji 😀 ok', 'key with 😀': true })
        return { errs, ok }
      })
      for (const e of out.errs) t.equal(e.code, 'KRN_ERR_VALIDATION_FAILED', e.message)
      t.same(out.errs[0].details.problems, [
        { pointer: '/s', message: 'must not contain \\u0000 or unpaired surrogates' },
      ])
      t.equal((await rowsOf(PLUGIN, 'odd')).length, 1)
      t.same(await inA((tx) => store.get(tx, ref, out.ok.id)), out.ok)
    })

    t.test(
      'conformance: the same queries give the same records in the same order as the in-memory test host',
      async (t) => {
        const ref = free(PLUGIN, 'items')
        const records = dataset(120, 7)
        const memory = memoryHost()
        await inA(async (tx) => {
          for (const r of records) await store.insert(tx, ref, r)
        })
        for (const r of records) await memory.call('data.insert', { collection: 'items', record: r })
        for (const q of CONFORMANCE) {
          const label = JSON.stringify(q)
          const sql = await inA((tx) => allPages((qq) => store.find(tx, ref, qq), q))
          const mem = await allPages((qq) => memory.call('data.find', { collection: 'items', query: qq }) as never, q)
          t.same(ns(sql.items), ns(mem.items), label)
          t.equal(sql.pages, mem.pages, `${label}: same number of pages`)
          const first = await inA((tx) => store.find(tx, ref, { ...q, limit: 5 }))
          const memFirst = (await memory.call('data.find', { collection: 'items', query: { ...q, limit: 5 } })) as {
            items: StoredRecord[]
          }
          t.same(ns(first.items), ns(memFirst.items), `${label}: first page`)
        }
        // Not vacuous: the filters select something and not everything.
        const counts = await inA(async (tx) =>
          Promise.all(
            CONFORMANCE.filter((q) => q.where).map(
              async (q) => (await store.find(tx, ref, { ...q, limit: 1000 })).items.length,
            ),
          ),
        )
        t.ok(
          counts.filter((c) => c > 0 && c < records.length).length >= 30,
          `most filters are selective: ${counts.join(',')}`,
        )
        t.same(await inA((tx) => store.find(tx, ref, { where: { qty: { in: [] } } })), { items: [], nextCursor: null })
        t.equal((await inA((tx) => store.find(tx, ref, {}))).items.length, 50, 'default limit 50')
        t.equal((await inA((tx) => store.find(tx, ref, { limit: 1000 }))).items.length, 120)
        await t.rejects(
          inA((tx) => store.find(tx, ref, { limit: 1001 })),
          { code: 'KRN_ERR_VALIDATION_FAILED' },
        )
        await t.rejects(
          inA((tx) => store.find(tx, ref, { limit: 0 })),
          { code: 'KRN_ERR_VALIDATION_FAILED' },
        )
        await t.rejects(
          inA((tx) => store.find(tx, ref, { where: { qty: { like: 1 } as never } })),
          { code: 'KRN_ERR_VALIDATION_FAILED' },
        )
      },
    )

    t.test('explicit operator results', async (t) => {
      const ref = free(PLUGIN, 'ops')
      await inA(async (tx) => {
        for (const r of [
          { n: 0, s: 'apple', x: 1, arr: [1, 2], o: { a: 1, b: 2 } },
          { n: 1, s: 'Apple pie', x: 2.5, arr: [[1, 2]], o: { b: 2, a: 1 } },
          { n: 2, s: 'banana', x: 10, arr: [{ a: 1 }], nul: null },
          { n: 3, s: '100%_off\\', arr: 'not an array', o: { a: 1 } },
          { n: 4, x: -3 },
        ])
          await store.insert(tx, ref, r)
      })
      const q = async (where: Record<string, unknown>, sort?: FindQuery['sort']) =>
        ns((await inA((tx) => store.find(tx, ref, { where, ...(sort ? { sort } : {}) }))).items)
      t.same(await q({ s: 'apple' }), [0])
      t.same(await q({ s: { ne: 'apple' } }), [1, 2, 3, 4])
      t.same(await q({ s: { in: ['banana', 'apple', 7] } }), [0, 2])
      t.same(await q({ s: { in: [null] } }), [4])
      t.same(await q({ x: { lt: 2.5 } }), [0, 4])
      t.same(await q({ x: { lte: 2.5 } }), [0, 1, 4])
      t.same(await q({ x: { gt: 1, lt: 10 } }), [1])
      t.same(await q({ x: { gte: 10 } }), [2])
      t.same(await q({ s: { gte: 'b' } }), [2])
      t.same(await q({ s: { lt: 'b' } }), [0, 1, 3], 'code point order: digits and capitals before lower case')
      t.same(await q({ s: { prefix: 'App' } }), [1])
      t.same(await q({ s: { prefix: '100%' } }), [3])
      t.same(await q({ s: { prefix: '%' } }), [], '% is not a wildcard')
      t.same(await q({ s: { prefix: '_' } }), [], '_ is not a wildcard')
      t.same(await q({ s: { contains: '_off\\' } }), [3], 'backslash is literal')
      t.same(await q({ s: { contains: 'an' } }), [2])
      t.same(await q({ arr: { contains: 1 } }), [0], 'element of an array, not of a nested array')
      t.same(await q({ arr: { contains: [1, 2] } }), [1], 'an array element equal to an array')
      t.same(await q({ arr: { contains: [1] } }), [], 'element equality, not containment')
      t.same(await q({ arr: { contains: { a: 1 } } }), [2])
      t.same(await q({ arr: { contains: 'array' } }), [3], 'substring of a string field')
      t.same(await q({ arr: [1, 2] }), [0])
      t.same(await q({ o: { eq: { a: 1, b: 2 } } }), [0, 1], 'objects equal whatever their key order')
      t.same(await q({ nul: null }), [0, 1, 2, 3, 4], 'absent equals null')
      t.same(await q({ nul: { ne: null } }), [])
      t.same(await q({ x: { gt: null } }), [], 'no range holds against null')
      t.same(await q({ s: { prefix: 'a' }, x: 1 }), [0])
      t.same(await q({ or: [{ n: 4 }, { and: [{ x: { gt: 0 } }, { s: { contains: 'pie' } }] }] }), [1, 4])
      t.same(await q({ and: [{ n: { in: [0, 1, 2] } }, { n: { ne: 1 } }], or: [{ x: 1 }, { x: 10 }] }), [0, 2])
    })

    t.test('mixed types: ranges only match the operand type; sort and pagination follow jsonb order', async (t) => {
      const ref = free(PLUGIN, 'mixed')
      const values: unknown[] = [1, 'a', true, null, [1], { a: 1 }, 2, 'b', false, undefined, 0.5, '1']
      await inA(async (tx) => {
        for (const [n, v] of values.entries()) await store.insert(tx, ref, v === undefined ? { n } : { n, v })
      })
      const q = async (query: FindQuery) => ns((await inA((tx) => store.find(tx, ref, query))).items)
      t.same(await q({ where: { v: { gt: 0 } } }), [0, 6, 10])
      t.same(await q({ where: { v: { lt: 'b' } } }), [1, 11])
      t.same(await q({ where: { v: { gte: false } } }), [2, 8])
      t.same(await q({ where: { v: { contains: 1 } } }), [4, 11])
      t.same(await q({ where: { v: { prefix: '' } } }), [1, 7, 11])
      // jsonb order: null (and absent) < string < number < boolean < array < object
      const asc = [3, 9, 11, 1, 7, 10, 0, 6, 8, 2, 4, 5]
      t.same(await q({ sort: [{ field: 'v' }], limit: 100 }), asc)
      const desc = await q({ sort: [{ field: 'v', direction: 'desc' }], limit: 100 })
      t.same(desc, [5, 4, 2, 8, 6, 0, 10, 7, 1, 11, 3, 9], 'descending, ties (null, absent) still by id ascending')
      const paged = await inA((tx) =>
        allPages((qq) => store.find(tx, ref, qq), {
          sort: [{ field: 'v', direction: 'desc' }, { field: 'n' }],
          limit: 2,
        }),
      )
      t.same(ns(paged.items), desc)
    })

    t.test('metadata fields filter and sort as the columns', async (t) => {
      const ref = free(PLUGIN, 'metaq')
      const recs = await inA(async (tx) => {
        const out: StoredRecord[] = []
        for (let n = 0; n < 6; n++) out.push(await store.insert(tx, ref, { n }))
        return out
      })
      // Times have millisecond precision: let the clock move past the last insert before the update.
      await new Promise((r) => setTimeout(r, 5))
      await inA((tx) => store.update(tx, ref, recs[2]!.id, { touched: true }, 1))
      const q = async (query: FindQuery) => ns((await inA((tx) => store.find(tx, ref, query))).items)
      t.same(await q({ where: { id: recs[3]!.id } }), [3])
      t.same(await q({ where: { id: { in: [recs[1]!.id, recs[4]!.id, 'junk', 5] } } as never }), [1, 4])
      t.same(await q({ where: { id: { gt: recs[3]!.id } } }), [4, 5])
      t.same(await q({ where: { id: { ne: recs[0]!.id, lte: recs[2]!.id } } }), [1, 2])
      t.same(
        await q({ where: { id: recs[3]!.id.toUpperCase() } }),
        [],
        'not the returned form: no match, like the test host',
      )
      t.same(await q({ where: { id: { ne: 'junk' } } }), [0, 1, 2, 3, 4, 5])
      t.same(await q({ where: { id: { gt: 'z' } } }), [])
      t.same(await q({ where: { id: { lt: 'z' } } }), [0, 1, 2, 3, 4, 5], 'string comparison with a non-UUID')
      t.same(await q({ where: { id: { gt: 5 } } as never }), [], 'type mismatch')
      t.same(await q({ where: { id: { prefix: recs[5]!.id.slice(0, 34) } } }), [5])
      t.same(await q({ where: { version: 2 } }), [2])
      t.same(await q({ where: { version: { gt: 1.5 } } }), [2])
      t.same(await q({ where: { version: '2' } as never }), [])
      t.same(await q({ where: { createdAt: { gte: recs[0]!.createdAt } } }), [0, 1, 2, 3, 4, 5])
      t.same(await q({ where: { updatedAt: { gt: recs[5]!.updatedAt } } }), [2])
      t.same(await q({ where: { createdAt: { prefix: recs[0]!.createdAt.slice(0, 4) } } }), [0, 1, 2, 3, 4, 5])
      t.same(await q({ where: { createdAt: { lt: '2000' } } }), [], 'string comparison with a partial time')
      t.same(await q({ where: { createdAt: { gt: '2000' } } }), [0, 1, 2, 3, 4, 5])
      t.same(await q({ sort: [{ field: 'version', direction: 'desc' }] }), [2, 0, 1, 3, 4, 5])
      t.same(
        await q({ sort: [{ field: 'updatedAt', direction: 'desc' }, { field: 'createdAt' }] }).then((r) => r[0]),
        2,
      )
      t.same(await q({ sort: [{ field: 'id', direction: 'desc' }], limit: 4 }), [5, 4, 3, 2])
      const paged = await inA((tx) =>
        allPages((qq) => store.find(tx, ref, qq), {
          sort: [
            { field: 'version', direction: 'desc' },
            { field: 'createdAt', direction: 'desc' },
          ],
          limit: 2,
        }),
      )
      t.equal(paged.items.length, 6)
      t.equal(ns(paged.items)[0], 2)
    })

    t.test(
      'pagination through hundreds of records with mixed directions returns each exactly once, in order',
      async (t) => {
        const ref = free(PLUGIN, 'many')
        const records = dataset(300, 11)
        const memory = memoryHost()
        await inA(async (tx) => {
          for (const r of records) await store.insert(tx, ref, r)
        })
        for (const r of records) await memory.call('data.insert', { collection: 'items', record: r })
        const sorts: NonNullable<FindQuery['sort']>[] = [
          [{ field: 'grade' }, { field: 'qty', direction: 'desc' }],
          [{ field: 'active', direction: 'desc' }, { field: 'grade' }, { field: 'price', direction: 'desc' }],
          [
            { field: 'qty', direction: 'desc' },
            { field: 'id', direction: 'desc' },
          ],
          [{ field: 'name', direction: 'desc' }],
        ]
        for (const sort of sorts) {
          const q: FindQuery = { where: { price: { gte: 5 } }, sort, limit: 13 }
          const sql = await inA((tx) => allPages((qq) => store.find(tx, ref, qq), q))
          const mem = await allPages((qq) => memory.call('data.find', { collection: 'items', query: qq }) as never, {
            ...q,
            limit: 1000,
          })
          t.equal(new Set(ns(sql.items)).size, sql.items.length, `${JSON.stringify(sort)}: no record twice`)
          t.same(ns(sql.items), ns(mem.items), `${JSON.stringify(sort)}: every record, in the test host's order`)
          t.ok(sql.pages > 15)
        }
        // The limit may change between pages; the query otherwise may not.
        const p1 = await inA((tx) => store.find(tx, ref, { sort: sorts[0], limit: 5 }))
        const p2 = await inA((tx) => store.find(tx, ref, { sort: sorts[0], limit: 7, cursor: p1.nextCursor! }))
        const whole = await inA((tx) => store.find(tx, ref, { sort: sorts[0], limit: 12 }))
        t.same(ns([...p1.items, ...p2.items]), ns(whole.items))
      },
    )

    t.test('cursors of another query, or garbled ones, are refused', async (t) => {
      const ref = free(PLUGIN, 'many')
      const q: FindQuery = { where: { grade: 'a' }, sort: [{ field: 'qty' }], limit: 3 }
      const { nextCursor } = await inA((tx) => store.find(tx, ref, q))
      t.type(nextCursor, 'string')
      t.match(nextCursor, /^[A-Za-z0-9_-]+$/)
      const cursor = nextCursor!
      const bad = async (query: FindQuery, r: CollectionRef = ref) =>
        (await inA((tx) => store.find(tx, r, query).catch((e) => e))).code
      t.equal(await bad({ ...q, where: { grade: 'b' }, cursor }), 'KRN_ERR_INVALID_CURSOR', 'other filter')
      t.equal(
        await bad({ ...q, sort: [{ field: 'qty', direction: 'desc' }], cursor }),
        'KRN_ERR_INVALID_CURSOR',
        'other sort',
      )
      t.equal(await bad({ ...q, sort: undefined, cursor }), 'KRN_ERR_INVALID_CURSOR', 'default sort')
      t.equal(await bad({ ...q, cursor }, free(PLUGIN, 'items')), 'KRN_ERR_INVALID_CURSOR', 'other collection')
      t.equal(await bad({ ...q, cursor }, free(OTHER, 'many')), 'KRN_ERR_INVALID_CURSOR', 'other plugin')
      const decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString())
      const forge = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
      for (const [label, c] of [
        ['garbage', 'garbage!'],
        ['empty', ''],
        ['not json', Buffer.from('{nope').toString('base64url')],
        ['not an object', forge([1, 2])],
        ['short key', forge({ ...decoded, k: decoded.k.slice(1) })],
        ['id not a uuid', forge({ ...decoded, k: [decoded.k[0], "'; drop table plugin_records; --"] })],
        ['sort value not json', forge({ ...decoded, k: ["1'); drop table plugin_records; --", decoded.k[1]] })],
        ['sort value not text', forge({ ...decoded, k: [1, decoded.k[1]] })],
        ['nul in a value', forge({ ...decoded, k: ['"\u0000"', decoded.k[1]] })],
        ['padding', `${cursor}==`],
        ['huge', 'A'.repeat(10000)],
      ] as const) {
        t.equal(await bad({ ...q, cursor: c }), 'KRN_ERR_INVALID_CURSOR', label)
      }
      // A well-formed forged cursor only moves the start of the page; the values are parameters.
      const forged = await inA((tx) =>
        store.find(tx, ref, {
          ...q,
          cursor: forge({ ...decoded, k: ['"\'); drop table plugin_records; --"', decoded.k[1]] }),
        }),
      )
      t.ok(
        forged.items.length === 3 && forged.items.every((r) => typeof r.qty === 'number'),
        'strings sort before numbers: the page starts at the numbers',
      )
      t.equal((await k.ownerSql('select count(*)::int as n from plugin_records'))[0].n > 0, true)
      // The transaction is still usable after a refused cursor.
      const after = await inA(async (tx) => {
        await store.find(tx, ref, { ...q, cursor: 'garbage!' }).catch(() => null)
        return (await store.find(tx, ref, q)).items.length
      })
      t.equal(after, 3)
    })

    t.test('tenants, plugins and tenantless transactions are isolated', async (t) => {
      const ref = free(PLUGIN, 'iso')
      const mine = await inA((tx) => store.insert(tx, ref, { secret: 'a' }))
      t.equal(await inB((tx) => store.get(tx, ref, mine.id)), null, "B cannot get A's record by id")
      await t.rejects(
        inB((tx) => store.update(tx, ref, mine.id, { secret: 'b' }, 1)),
        { code: 'KRN_ERR_NOT_FOUND' },
      )
      t.equal(await inB((tx) => store.delete(tx, ref, mine.id)), false)
      t.same(await inB((tx) => store.find(tx, ref, { where: { id: mine.id } })), { items: [], nextCursor: null })
      t.same(await inB((tx) => store.find(tx, ref, { where: { secret: 'a' } })), { items: [], nextCursor: null })
      t.equal(await inB((tx) => dropPluginData(tx, PLUGIN)), 0, "B dropping the plugin's data drops none of A's")
      t.same(await inA((tx) => store.get(tx, ref, mine.id)), mine, "A's record is untouched")

      const theirs = free(OTHER, 'iso')
      t.equal(
        await inA((tx) => store.get(tx, theirs, mine.id)),
        null,
        "another plugin's collection of the same name is another collection",
      )
      t.same((await inA((tx) => store.find(tx, theirs, {}))).items, [])
      t.equal(await inA((tx) => store.delete(tx, theirs, mine.id)), false)
      await t.rejects(
        inA((tx) => store.update(tx, theirs, mine.id, {}, 1)),
        { code: 'KRN_ERR_NOT_FOUND' },
      )
      t.equal(await inA((tx) => store.get(tx, free(PLUGIN, 'other-name'), mine.id)), null)

      const db = k.kernel.ctx.db
      t.equal(await db.inOrg(null, (tx) => store.get(tx, ref, mine.id)), null, 'no tenant: nothing')
      t.same((await db.inOrg(null, (tx) => store.find(tx, ref, {}))).items, [])
      t.equal(await db.inOrg(null, (tx) => store.delete(tx, ref, mine.id)), false)
      await t.rejects(
        db.inOrg(null, (tx) => store.insert(tx, ref, { secret: 'x' })),
        'no tenant: no insert',
      )
      t.equal(
        (
          await k.ownerSql(
            "select count(*)::int as n from plugin_records where tenant_id is null or data ->> 'secret' = 'x'",
          )
        )[0].n,
        0,
      )
    })

    t.test('hostile field names, values and __proto__ keys are data', async (t) => {
      const ref = free(PLUGIN, 'hostile')
      const names = [
        "a'b",
        'a"b',
        'a;b',
        "x'); drop table plugin_records; --",
        'a\\b',
        '%',
        '_',
        '?',
        '$1',
        'a->b',
        '{a}',
        'constructor',
        'toString',
      ]
      const record = JSON.parse(
        JSON.stringify(Object.fromEntries(names.map((n, i) => [n, i]))).replace(
          /^\{/,
          '{"__proto__":{"polluted":true},',
        ),
      )
      const ins = await inA((tx) => store.insert(tx, ref, record))
      await inA((tx) => store.insert(tx, ref, { other: 1 }))
      t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution')
      t.ok(Object.hasOwn(ins, '__proto__'), '__proto__ is an own key of the result')
      const got = (await inA((tx) => store.get(tx, ref, ins.id)))!
      t.same(Object.getOwnPropertyDescriptor(got, '__proto__')?.value, { polluted: true })
      t.equal(Object.getPrototypeOf(got), Object.prototype)
      for (const [i, n] of names.entries()) {
        const found = await inA((tx) =>
          store.find(tx, ref, { where: { [n]: i }, sort: [{ field: n, direction: 'desc' }] }),
        )
        t.same(
          found.items.map((r) => r.id),
          [ins.id],
          `filter and sort by ${JSON.stringify(n)}`,
        )
        const ranged = await inA((tx) =>
          store.find(tx, ref, { where: { [n]: { gte: i, in: [i], contains: 'x' } as never } }),
        )
        t.same(ranged.items, [])
      }
      const byProto = await inA((tx) =>
        allPages((qq) => store.find(tx, ref, qq), {
          sort: [{ field: '__proto__', direction: 'desc' }, { field: 'constructor' }],
          limit: 1,
        }),
      )
      t.same(
        byProto.items.map((r) => r.id).sort(),
        (await inA((tx) => store.find(tx, ref, {}))).items.map((r) => r.id).sort(),
        'sort and paginate by __proto__',
      )
      const where = JSON.parse('{"__proto__": {"eq": {"polluted": true}}}')
      t.same(
        (await inA((tx) => store.find(tx, ref, { where }))).items.map((r) => r.id),
        [ins.id],
        'a __proto__ filter key is a field',
      )
      const none = JSON.parse('{"__proto__": {"eq": 1}}')
      t.same((await inA((tx) => store.find(tx, ref, { where: none }))).items, [])
      const patched = await inA((tx) =>
        store.update(tx, ref, ins.id, JSON.parse('{"__proto__": 5, "other": "\'; --"}'), 1),
      )
      t.same(Object.getOwnPropertyDescriptor(patched, '__proto__')?.value, 5)
      t.equal(patched.other, "'; --")
      const values = ["'; delete from plugin_records; --", '%', '_', '\\', '\\%', "\\'", '$1', '?']
      const vref = free(PLUGIN, 'hostile-values')
      await inA(async (tx) => {
        for (const v of values) await store.insert(tx, vref, { v })
      })
      for (const v of values) {
        const eq = await inA((tx) => store.find(tx, vref, { where: { v } }))
        t.same(
          eq.items.map((r) => r.v),
          [v],
          `eq ${v}`,
        )
        const pre = await inA((tx) => store.find(tx, vref, { where: { v: { prefix: v } } }))
        t.same(pre.items.map((r) => r.v).sort(), values.filter((x) => x.startsWith(v)).sort(), `prefix ${v}`)
        const sub = await inA((tx) => store.find(tx, vref, { where: { v: { contains: v } } }))
        t.same(sub.items.map((r) => r.v).sort(), values.filter((x) => x.includes(v)).sort(), `contains ${v}`)
      }
      t.equal(
        (await k.ownerSql('select count(*)::int as n from plugin_records where collection = ?', ['hostile-values']))[0]
          .n,
        values.length,
      )
    })

    t.test(
      'declared indexes exist, serve eq filters, and unique ones conflict without aborting the transaction',
      async (t) => {
        const names = await inA((tx) =>
          ensureIndexes(tx, PLUGIN, {
            orders: {
              indexes: [
                { fields: ['status'] },
                { fields: ['customer', 'createdAt'] },
                { fields: ['ref'], unique: true },
              ],
            },
            plain: {},
          }),
        )
        t.equal(names.length, 3)
        const again = await inA((tx) =>
          store.ensureIndexes(tx, PLUGIN, { orders: { indexes: [{ fields: ['status'] }] } }),
        )
        t.same(again, [names[0]], 'idempotent')
        const idx = await k.ownerSql(
          'select indexname, indexdef from pg_indexes where tablename = ? and indexname = any(?::text[])',
          ['plugin_records', `{${names.join(',')}}`],
        )
        t.equal(idx.length, 3)
        const byName = Object.fromEntries(idx.map((r) => [r.indexname, r.indexdef]))
        t.match(
          byName[names[0]!],
          /\(tenant_id, \(\(data -> 'status'::text\)\)\) WHERE \(\(plugin = '@acme\/parts'::text\) AND \(collection = 'orders'::text\)\)/,
        )
        t.match(byName[names[1]!], /\(tenant_id, \(\(data -> 'customer'::text\)\), created_at\)/)
        t.match(byName[names[2]!], /CREATE UNIQUE INDEX/)
        await t.rejects(
          inA((tx) =>
            ensureIndexes(tx, PLUGIN, { orders: { indexes: [{ fields: ["x'); drop table plugin_records; --"] }] } }),
          ),
          { code: 'KRN_ERR_VALIDATION_FAILED' },
        )
        await t.rejects(
          inA((tx) => ensureIndexes(tx, 'not a plugin', { orders: { indexes: [{ fields: ['x'] }] } })),
          { code: 'KRN_ERR_VALIDATION_FAILED' },
        )
        await t.rejects(
          inA((tx) => ensureIndexes(tx, PLUGIN, { orders: { indexes: [{ fields: [] }] } })),
          { code: 'KRN_ERR_VALIDATION_FAILED' },
        )

        const orders: CollectionRef = {
          plugin: PLUGIN,
          name: 'orders',
          schema: { type: 'object' },
          indexes: [{ fields: ['status'] }, { fields: ['customer', 'createdAt'] }, { fields: ['ref'], unique: true }],
        }
        const out = await inA(async (tx) => {
          const first = await store.insert(tx, orders, { ref: 'R-1', status: 'open' })
          const dup = await store.insert(tx, orders, { ref: 'R-1', status: 'late' }).catch((e) => e)
          const second = await store.insert(tx, orders, { ref: 'R-2', status: 'open' })
          const clash = await store.update(tx, orders, second.id, { ref: 'R-1' }, 1).catch((e) => e)
          const moved = await store.update(tx, orders, second.id, { ref: 'R-3' }, 1)
          const invalidMerge = await store
            .update(
              tx,
              { ...orders, schema: { type: 'object', properties: { ref: { type: 'string' } } } },
              moved.id,
              { ref: 3 },
              2,
            )
            .catch((e) => e)
          const after = await store.find(tx, orders, { sort: [{ field: 'ref' }] })
          return { first, dup, second, clash, moved, invalidMerge, after }
        })
        t.equal(out.dup.code, 'KRN_ERR_CONFLICT', 'duplicate insert')
        t.equal(out.clash.code, 'KRN_ERR_CONFLICT', 'update onto a taken value')
        t.equal(out.invalidMerge.code, 'KRN_ERR_VALIDATION_FAILED')
        t.equal(out.moved.version, 2)
        t.same(
          out.after.items.map((r) => [r.ref, r.version]),
          [
            ['R-1', 1],
            ['R-3', 2],
          ],
          'the transaction went on and committed the rest',
        )
        t.same(
          await inB((tx) => store.insert(tx, orders, { ref: 'R-1' })).then((r) => r.ref),
          'R-1',
          'unique per tenant',
        )

        if (kind === 'postgres') {
          await inA(async (tx) => {
            for (let i = 0; i < 300; i++)
              await store.insert(tx, orders, {
                ref: `bulk-${i}`,
                status: i % 50 === 0 ? 'rare' : 'common',
                customer: `c${i % 7}`,
              })
          })
          await k.ownerSql('analyze plugin_records')
          const plan = await inA(async (tx) => {
            const log: Array<{ text: string; params: unknown[] }> = []
            await store.find(recording(tx, log), orders, { where: { status: 'rare' } })
            await tx.sql('set local enable_seqscan = off')
            const rows = await tx.sql<{ 'QUERY PLAN': string }>(`explain ${log[0]!.text}`, log[0]!.params)
            return rows.map((r) => r['QUERY PLAN']).join('\n')
          })
          t.match(
            plan,
            /(Index Scan using|Bitmap Index Scan on) plugin_idx_/,
            'a declared index of the collection serves the query',
          )
          // Row-level security only lets leakproof quals into an index condition; the migration
          // declares jsonb's `->` and `=` leakproof when it runs as a superuser (as here).
          t.match(
            plan,
            /Index Cond: .*data -> 'status'/,
            'the eq test is an index condition (the migration declared jsonb -> and = leakproof)',
          )
          // A find is a named statement, so PostgreSQL may plan it once for every value (a generic
          // plan): its text names the plugin, collection and field, so even that plan uses the index.
          const generic = await inA(async (tx) => {
            const log: Array<{ text: string; params: unknown[] }> = []
            await store.find(recording(tx, log), orders, { where: { status: 'rare' } })
            await tx.sqlOnce(`prepare generic_find as ${positional(log[0]!.text)}`)
            await tx.sqlOnce('set local plan_cache_mode = force_generic_plan')
            await tx.sqlOnce('set local enable_seqscan = off')
            // EXECUTE takes its arguments as SQL literals (a generic plan ignores their values anyway).
            const args = log[0]!.params.map((v) => (typeof v === 'number' ? v : `'${String(v).replace(/'/g, "''")}'`))
            const rows = await tx.sqlOnce<{ 'QUERY PLAN': string }>(`explain execute generic_find(${args.join(', ')})`)
            await tx.sqlOnce('deallocate generic_find')
            return rows.map((r) => r['QUERY PLAN']).join('\n')
          })
          t.match(generic, /Index Cond: .*data -> 'status'/, 'the generic plan uses the declared index too')
        }
      },
    )

    t.test("dropping a plugin's data removes only that tenant's records of that plugin", async (t) => {
      const ref = free(PLUGIN, 'drop')
      const theirs = free(OTHER, 'drop')
      await inA(async (tx) => {
        await store.insert(tx, ref, { v: 1 })
        await store.insert(tx, theirs, { v: 1 })
      })
      await inB((tx) => store.insert(tx, ref, { v: 2 }))
      const before = (
        await k.ownerSql('select count(*)::int as n from plugin_records where tenant_id = ?::uuid and plugin = ?', [
          a.orgId,
          PLUGIN,
        ])
      )[0].n
      t.ok(before > 1)
      t.equal(
        await inA((tx) => store.dropPluginData(tx, PLUGIN)),
        before,
        'also a method of the store, as the plugin host uses it',
      )
      t.equal(
        (
          await k.ownerSql('select count(*)::int as n from plugin_records where tenant_id = ?::uuid and plugin = ?', [
            a.orgId,
            PLUGIN,
          ])
        )[0].n,
        0,
      )
      t.equal(
        (
          await k.ownerSql('select count(*)::int as n from plugin_records where tenant_id = ?::uuid and plugin = ?', [
            b.orgId,
            PLUGIN,
          ])
        )[0].n > 0,
        true,
      )
      t.equal((await inA((tx) => store.find(tx, theirs, {}))).items.length, 1)
    })
  })
}
