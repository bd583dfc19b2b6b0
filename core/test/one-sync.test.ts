// ADR 0111 and 0112 on the wire: a transaction's last statement and its `commit` leave in one
// round trip (one Sync, no separate `commit` query), and a failed statement commits nothing; a
// transaction's `begin` and scoping travel with its first statement, and a failed opening runs
// nothing after it.
import pg from 'pg'
import t from 'tap'
import { oneSync } from '../src/db/one-sync.js'
import { PG_ADMIN_URL } from './helpers/test-kernel.js'

/** What the client sends: Syncs (extended-protocol round trips), simple queries, parsed texts. */
function spy(client: pg.Client) {
  const conn = (client as unknown as { connection: Record<string, (...args: unknown[]) => unknown> }).connection
  const seen = { syncs: 0, simple: [] as string[], parsed: [] as string[] }
  for (const [method, note] of [
    ['sync', () => seen.syncs++],
    ['query', (text: unknown) => seen.simple.push(String(text))],
    ['parse', (q: unknown) => seen.parsed.push((q as { text: string }).text)],
  ] as const) {
    const original = conn[method]!.bind(conn)
    conn[method] = (...args: unknown[]) => {
      note(args[0])
      return original(...args)
    }
  }
  return seen
}

t.test('the last statement and its commit in one round trip, on PostgreSQL', async (t) => {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL })
  await client.connect()
  t.teardown(() => client.end())
  await client.query('create temporary table kept (id int primary key)')
  const insert = { name: 'commit_with_insert', text: 'insert into kept (id) values ($1) returning id', values: [1] }

  await client.query('begin')
  await client.query("select set_config('trellis.probe', 'in the transaction', true)")
  await client.query('insert into kept (id) values (0)')
  const seen = spy(client)
  const rows = await oneSync(client, insert, { open: [], commit: true })
  t.same(rows, [{ id: 1 }], "the statement's rows come back")
  t.equal(seen.syncs, 1, 'one Sync: one round trip')
  t.same(seen.simple, [], 'no separate commit')
  t.same(seen.parsed, [insert.text, 'commit'], 'the commit travels with the statement')
  const probe = await client.query<{ v: string }>("select current_setting('trellis.probe', true) as v")
  t.not(probe.rows[0]!.v, 'in the transaction', 'the transaction is over (its local setting is gone)')
  t.same(
    (await client.query('select id from kept order by id')).rows,
    [{ id: 0 }, { id: 1 }],
    'what the transaction wrote before and with its last statement is committed',
  )

  await client.query('begin')
  await client.query('insert into kept (id) values (2)')
  await t.rejects(
    oneSync(client, { ...insert, values: [1] }, { open: [], commit: true }),
    /duplicate key/,
    'a failed statement rejects',
  )
  await t.rejects(client.query('select 1'), /current transaction is aborted/, 'and is not committed past')
  await client.query('rollback')
  t.same(
    (await client.query('select id from kept order by id')).rows,
    [{ id: 0 }, { id: 1 }],
    'nothing of the failed transaction was written',
  )
})

t.test('begin and the scoping with the first statement, on PostgreSQL', async (t) => {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL })
  await client.connect()
  t.teardown(() => client.end())
  const prepared = (client as unknown as { connection: { parsedStatements: Record<string, string> } }).connection
    .parsedStatements
  await client.query('create temporary table opened (id int primary key, probe text)')
  const begin = { name: 'one_sync_begin', text: 'begin' }
  const scope = {
    name: 'one_sync_scope',
    text: "select set_config('trellis.probe', $1, true) as probe",
    values: ['scoped'],
  }
  const insert = {
    name: 'one_sync_opened',
    text: "insert into opened (id, probe) values ($1, current_setting('trellis.probe', true)) returning id, probe",
    values: [1],
  }

  // An opening statement that cannot be parsed: nothing after it is parsed or run, and neither
  // it nor what followed it is recorded as prepared (the statement, parsed first, is).
  const broken = { name: 'one_sync_broken', text: 'select trellis_no_such_function()' }
  let seen = spy(client)
  await t.rejects(oneSync(client, insert, { open: [begin, broken, scope], commit: true }), /does not exist/)
  t.equal(seen.syncs, 1, 'in one round trip')
  t.same(
    seen.parsed,
    [insert.text, begin.text, broken.text, scope.text, 'commit'],
    'every parse goes first, the statement first',
  )
  t.same(
    [insert.name, begin.name, broken.name, scope.name, 'trellis_commit'].map((n) => n in prepared),
    [true, true, false, false, false],
    'recorded as prepared: what was parsed before the failure',
  )
  t.equal((await client.query('select 1 as n')).rows[0].n, 1, 'nothing was begun')

  // An opening that fails when it runs: the statement after it does not run.
  const refused = { name: 'one_sync_refused', text: 'select 1 / (select count(*) from opened)::int as n' }
  seen = spy(client)
  await t.rejects(oneSync(client, insert, { open: [begin, refused], commit: false }), /division by zero/)
  t.same(seen.parsed, [refused.text], 'only what was not yet prepared is parsed')
  await t.rejects(client.query('select 1'), /current transaction is aborted/, 'the transaction it began is failed')
  await client.query('rollback')
  t.same((await client.query('select id from opened')).rows, [], 'the statement after it did not run')

  seen = spy(client)
  const rows = await oneSync(client, insert, { open: [begin, scope], commit: false })
  t.same(rows, [{ id: 1, probe: 'scoped' }], "the statement's rows, run after the opening's scoping")
  t.equal(seen.syncs, 1, 'begin, scoping and statement in one round trip')
  t.same(seen.parsed, [scope.text], 'the scoping parsed once; begin and the statement were prepared')
  t.equal((await client.query('select 1 as n')).rows[0].n, 1, 'the transaction stays open for more')
  const unnamed = { text: 'insert into opened (id, probe) values ($1, $2) returning id', values: [2, 'last'] }
  t.same(await oneSync(client, unnamed, { open: [], commit: true }), [{ id: 2 }], 'an unnamed last statement commits')
  t.same(
    (await client.query('select id, probe from opened order by id')).rows,
    [
      { id: 1, probe: 'scoped' },
      { id: 2, probe: 'last' },
    ],
    'both committed',
  )

  // One round trip for a whole transaction, with nothing left to parse.
  seen = spy(client)
  const whole = await oneSync(client, { ...insert, values: [3] }, { open: [begin, scope], commit: true })
  t.same(whole, [{ id: 3, probe: 'scoped' }])
  t.equal(seen.syncs, 1, 'a whole transaction in one round trip')
  t.same(seen.parsed, [], 'every statement was prepared before')
  const after = await client.query<{ v: string | null }>("select current_setting('trellis.probe', true) as v")
  t.not(after.rows[0]!.v, 'scoped', 'the transaction is over')
  t.equal((await client.query('select count(*)::int as n from opened')).rows[0].n, 3)
})
