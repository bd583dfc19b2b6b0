import t from 'tap'
import { TableUpkeep } from '../src/db/table-upkeep.js'
import { ensureIndexes } from '../src/plugins/data/index.js'
import { eventually } from './helpers/receiver.js'
import { createTenantWithAdmin, DB_KINDS, startTestKernel, type TestKernel } from './helpers/test-kernel.js'
import pg from 'pg'

// ADR 0109: where autovacuum does not run (the embedded database; this machine's PostgreSQL has
// `autovacuum = off`), the kernel analyzes and vacuums its tables itself; on any server a
// declared index brings statistics on its field, and the kernel fills new ones at once.
// What a user sees: a plugin's look-up by a unique field reads its index, not every record —
// even when the collection is all the table holds.

const PLUGIN = '@upkeep/things'
const ROWS = 3000

/** The plan of the statement the data API compiles for `find({ where: { code }, limit: 1 })`. */
async function lookupPlan(k: TestKernel, orgId: string): Promise<string> {
  const rows = await k.appSql<{ 'QUERY PLAN': string }>(
    orgId,
    `explain select id, version, created_at, updated_at, data from plugin_records
      where plugin = '${PLUGIN}' and collection = 'things' and (data -> 'code') = '"code-17"'::jsonb
      order by id asc limit 1`,
  )
  return rows.map((r) => r['QUERY PLAN']).join('\n')
}

/** plugin_records' activity counters, once the server shows at least `atLeast` changes since the last analyze. */
async function countersShow(k: TestKernel, field: 'n_mod_since_analyze' | 'n_dead_tup', atLeast: number) {
  return eventually(async () => {
    const [row] = await k.ownerSql<{ n: number }>(
      `select ${field}::int as n from pg_stat_user_tables where relname = 'plugin_records'`,
    )
    return row!.n >= atLeast && row
  }, 20_000)
}

async function serverAutovacuum(k: TestKernel): Promise<boolean> {
  if (k.kind === 'pglite') return false
  const [row] = await k.ownerSql<{ on: boolean }>(`select current_setting('autovacuum') = 'on' as on`)
  return row!.on
}

for (const kind of DB_KINDS) {
  t.test(`table upkeep (${kind})`, async (t) => {
    const k = await startTestKernel(t, kind, { upkeep: { everyMs: 0 } })
    const db = k.kernel.ctx.db
    const upkeep = new TableUpkeep(db)
    t.teardown(() => upkeep.close())
    const a = await createTenantWithAdmin(k, `upkeep-${kind}`)
    const autovacuum = await serverAutovacuum(k)

    t.test('a collection filled and declared gets statistics: the look-up reads its index', async (t) => {
      await db.asOwner((tx) =>
        ensureIndexes(tx, PLUGIN, {
          things: { indexes: [{ fields: ['code'], unique: true }] },
          none: { indexes: [{ fields: ['code'] }] },
        }),
      )
      await k.ownerSql(
        `insert into plugin_records (tenant_id, plugin, collection, id, data)
         select ?::uuid, ?, 'things', gen_random_uuid(), jsonb_build_object('code', 'code-' || g, 'n', g)
           from generate_series(1, ${ROWS}) g`,
        [a.orgId, PLUGIN],
      )
      await countersShow(k, 'n_mod_since_analyze', ROWS)
      // Without statistics the planner walks the collection in id order and filters every record.
      t.notMatch(await lookupPlan(k, a.orgId), /plugin_idx_/, 'before the pass the declared index is not used')
      const pass = await upkeep.pass()
      t.equal(pass.autovacuum, autovacuum, 'the pass knows whether the server vacuums itself')
      t.ok(
        [...pass.vacuumed, ...pass.analyzed].includes('plugin_records'),
        'plugin_records was analyzed (the declared field’s statistics were empty)',
      )
      if (!autovacuum)
        t.ok(
          pass.vacuumed.includes('plugin_records'),
          '3,000 inserted rows are past the insert threshold: vacuumed too',
        )
      t.match(
        await lookupPlan(k, a.orgId),
        /Index Scan using plugin_idx_\w+ on plugin_records/,
        'after it, the look-up reads the declared index',
      )
      const [stats] = await k.ownerSql<{ analyzed: boolean }>(
        `select coalesce(last_analyze, last_autoanalyze) is not null as analyzed from pg_stat_user_tables where relname = 'plugin_records'`,
      )
      t.ok(stats!.analyzed, 'the server records the analyze')
    })

    t.test('a pass with nothing due leaves the table alone', async (t) => {
      const pass = await upkeep.pass()
      t.notOk(
        pass.vacuumed.includes('plugin_records') || pass.analyzed.includes('plugin_records'),
        'plugin_records untouched',
      )
      const [stats] = await k.ownerSql<{ n: number }>(
        `select count(*)::int as n from pg_stats_ext_exprs where tablename = 'plugin_records' and expr = '(data -> ''code''::text)'`,
      )
      t.equal(stats!.n, 1, 'the declared field has its statistics')
    })

    t.test('dead rows are reclaimed where autovacuum does not run', async (t) => {
      await k.ownerSql(
        `update plugin_records set data = data || '{"n": 0}' where plugin = ? and collection = 'things'`,
        [PLUGIN],
      )
      await countersShow(k, 'n_dead_tup', ROWS)
      const pass = await upkeep.pass()
      if (autovacuum) {
        t.notOk(pass.vacuumed.includes('plugin_records'), 'the server’s autovacuum does it: the kernel does not')
        return
      }
      t.ok(pass.vacuumed.includes('plugin_records'), 'vacuumed')
      const dead = await eventually(async () => {
        const [row] = await k.ownerSql<{ n: number }>(
          `select n_dead_tup::int as n from pg_stat_user_tables where relname = 'plugin_records'`,
        )
        return row!.n < ROWS && row
      }, 20_000)
      t.ok(dead.n < ROWS, `the dead rows are gone (${dead.n} left)`)
    })

    if (kind === 'postgres')
      t.test('kernel processes sharing a database take turns', async (t) => {
        const other = new pg.Client({ connectionString: k.databaseUrl })
        await other.connect()
        t.teardown(() => other.end())
        await other.query(`select pg_advisory_lock(hashtextextended('trellis.table-upkeep', 0))`)
        t.same((await upkeep.pass()).ran, false, 'another process’s pass holds the turn: this one skips')
        await other.query(`select pg_advisory_unlock(hashtextextended('trellis.table-upkeep', 0))`)
        t.same((await upkeep.pass()).ran, true, 'once it is done, the next pass runs')
      })

    if (kind === 'postgres')
      t.test(
        'two installs declaring the same unique field at once both succeed, with one statistics object',
        async (t) => {
          const clients = [
            new pg.Client({ connectionString: k.databaseUrl }),
            new pg.Client({ connectionString: k.databaseUrl }),
          ]
          for (const c of clients) await c.connect()
          t.teardown(() => Promise.all(clients.map((c) => c.end())))
          const [first, second] = clients as [pg.Client, pg.Client]
          await first.query('begin')
          await first.query(`select trellis_plugin_index('@upkeep/one', 'items', array['partNo'], true)`)
          await second.query('begin')
          const waiting = second.query(`select trellis_plugin_index('@upkeep/two', 'items', array['partNo'], true)`)
          // The second waits for the first's turn; once the first commits it finds the object made.
          await eventually(async () => {
            const [row] = await k.ownerSql<{ n: number }>(
              `select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%@upkeep/two%'`,
            )
            return row!.n === 1
          })
          await first.query('commit')
          await waiting
          await second.query('commit')
          const objects = await k.ownerSql<{ n: number }>(
            `select count(*)::int as n from pg_statistic_ext where stxname = 'plugin_stx_' || substr(md5('partNo'), 1, 20)`,
          )
          t.equal(objects[0]!.n, 1, 'one statistics object for the field')
          const indexes = await k.ownerSql<{ n: number }>(
            `select count(*)::int as n from pg_indexes where tablename = 'plugin_records' and indexdef like '%partNo%'`,
          )
          t.equal(indexes[0]!.n, 2, 'each plugin got its index')
        },
      )

    if (kind === 'postgres')
      t.test('a login that owns no table leaves every table alone', async (t) => {
        const role = `upkeep_nobody_${process.pid}`
        await k.ownerSql(`create role ${role} login`)
        t.teardown(() => k.ownerSql(`drop role if exists ${role}`))
        await k.ownerSql(`update plugin_records set data = data || '{"n": 1}' where plugin = ?`, [PLUGIN])
        await countersShow(k, 'n_dead_tup', ROWS)
        const url = new URL(k.databaseUrl!)
        url.username = role
        const asNobody = new TableUpkeep({
          embedded: false,
          async outsideTransaction(fn) {
            const c = new pg.Client({ connectionString: url.toString() })
            await c.connect()
            try {
              return await fn(async (text) => (await c.query(text)).rows as never)
            } finally {
              await c.end()
            }
          },
        })
        const pass = await asNobody.pass()
        t.same([pass.vacuumed, pass.analyzed], [[], []], 'nothing vacuumed or analyzed (nor a warning per table)')
        if (!autovacuum)
          t.ok((await upkeep.pass()).vacuumed.includes('plugin_records'), 'the owner’s next pass finds the table due')
      })
  })
}
