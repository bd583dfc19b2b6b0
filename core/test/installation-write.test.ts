import t from 'tap'
import type { Database, Tx } from '../src/db/database.js'
import { createTenantWithAdmin, startTestKernel, type Reply } from './helpers/test-kernel.js'
import { builtFixture, registerVersion } from './helpers/plugin-versions.js'
import { parkTransactions } from './helpers/parked-transactions.js'
import { eventually } from './helpers/receiver.js'
import { emitEvents } from '../src/events/outbox.js'

/**
 * Counts the request-pool transactions that touch the installations table while `fn` runs (the
 * organisation-status reads a request may make meanwhile touch other tables and are not counted).
 */
async function installationTransactions(db: Database, fn: () => Promise<void>): Promise<number> {
  const { inOrg, inActiveOrg } = db
  let n = 0
  const counting = (tx: Tx): Tx => {
    let counted = false
    const sql: typeof tx.sql = (text, params) => {
      if (!counted && text.includes('plugin_installations')) {
        counted = true
        n++
      }
      return tx.sql(text, params)
    }
    return { ...tx, sql }
  }
  db.inOrg = ((orgId, body, role) =>
    inOrg.call(db, orgId, (tx, status) => body(counting(tx), status), role)) as Database['inOrg']
  db.inActiveOrg = ((orgId, body, role) =>
    inActiveOrg.call(db, orgId, (tx) => body(counting(tx)), role)) as Database['inActiveOrg']
  try {
    await fn()
  } finally {
    db.inOrg = inOrg
    db.inActiveOrg = inActiveOrg
  }
  return n
}

// PATCH /v1/installations/:id is one of the audited writes issue 21 measures: its answer (the
// installation with its history and pending upgrade) comes from the write's own transaction,
// and it never waits for background work (ADRs 0055, 0098).
t.test('changing an installation (postgres)', async (t) => {
  const k = await startTestKernel(t, 'postgres', { poolMax: 2, plugins: { sandboxWorkers: 1 } })
  const a = await createTenantWithAdmin(k, 'instwrite')
  const notes = await builtFixture('notes')
  await registerVersion(k, notes)
  const installed = await k.req('POST', '/v1/installations', {
    token: a.token,
    body: {
      plugin: notes.manifest.name,
      version: notes.manifest.version,
      capabilities: notes.manifest.capabilities,
      settings: { greeting: 'hello', apiToken: 's3cret' },
    },
  })
  t.equal(installed.status, 201)
  const id = installed.body.id as string
  const db = k.kernel.ctx.db

  t.test('new settings are answered from the write’s own transaction', async (t) => {
    // What the install set going is done first: the fan-out of its event reads the installations
    // on the request pool, and under load it could run while the change does and be counted.
    await eventually(
      async () =>
        (await k.ownerSql('select 1 from events where tenant_id = ? and processed_at is null', [a.orgId])).length === 0,
    )
    let patched!: Reply
    const transactions = await installationTransactions(db, async () => {
      patched = await k.req('PATCH', `/v1/installations/${id}`, {
        token: a.token,
        body: { settings: { greeting: 'hi' } },
      })
    })
    t.equal(patched.status, 200)
    t.same(patched.body.settings, { greeting: 'hi' }, 'the new settings')
    t.same(patched.body.secrets, ['apiToken'], 'the secret kept, by name only')
    t.notOk('secretsEnc' in patched.body, 'never the sealed secrets')
    t.equal(patched.body.version, '1.0.0')
    t.same(patched.body.history, [])
    t.equal(patched.body.pendingUpgrade, null)
    t.equal(transactions, 1, 'one transaction read, wrote and answered')
    const read = await k.req('GET', `/v1/installations/${id}`, { token: a.token })
    t.same(patched.body, read.body, 'the answer is the installation as it is now read')
    const [entry] = await k.ownerSql(
      `select action, data from audit_log where tenant_id = ? and target_id = ? and action = 'plugin.settings.updated'`,
      [a.orgId, id],
    )
    t.same(entry?.data, { plugin: '@acme/notes', settings: ['greeting'], secrets: [] }, 'audited')
  })

  t.test('an installation is disabled and enabled while every background connection is held', async (t) => {
    // More background transactions than its pool has: the extra ones wait in the background pool.
    const held = await parkTransactions(db.background, null, 4, 2)
    try {
      const off = await k.req('PATCH', `/v1/installations/${id}`, { token: a.token, body: { status: 'disabled' } })
      t.equal(off.status, 200, 'answered')
      t.equal(off.body.status, 'disabled')
      const refused = await k.req('GET', '/v1/x/notes/whoami', { token: a.token })
      t.equal(refused.body.code, 'PLG_ERR_INSTALLATION_DISABLED', 'a disabled installation stops serving at once')
      const on = await k.req('PATCH', `/v1/installations/${id}`, { token: a.token, body: { status: 'active' } })
      t.equal(on.status, 200, 'answered')
      t.equal(on.body.status, 'active')
      t.equal(held.count(), 2, 'the background pool still holds only its own two connections')
    } finally {
      await held.release()
    }
    const toggles = await k.ownerSql(
      `select action from audit_log where tenant_id = ? and action in ('plugin.disabled', 'plugin.enabled') order by id`,
      [a.orgId],
    )
    t.same(
      toggles.map((r: { action: string }) => r.action),
      ['plugin.disabled', 'plugin.enabled'],
      'both audited',
    )
  })

  t.test('the workflow runtime sweeps while every request connection is held', async (t) => {
    const held = await parkTransactions(db, a.orgId, 2)
    try {
      // Timers, timeouts, SLAs, lost steps and schedules are looked for on the background pool.
      await k.kernel.ctx.workflows.sweep()
      t.pass('the sweep finished without a request connection')
    } finally {
      await held.release()
    }
  })

  t.test('an event is fanned out while every request connection is held', async (t) => {
    // A change forgets the tenant's cached installations, so the fan-out's look for subscribing
    // installations must read them again.
    const changed = await k.req('PATCH', `/v1/installations/${id}`, {
      token: a.token,
      body: { settings: { greeting: 'again' } },
    })
    t.equal(changed.status, 200)
    const held = await parkTransactions(db, a.orgId, 2)
    try {
      // Written outside a request (no subscriber cache): pending, so the dispatcher takes it.
      const [eventId] = await db.background.inOrg(a.orgId, (tx) =>
        emitEvents(tx, { type: 'notes.note.archived', subject: 'note/1', data: { noteId: '1' } }),
      )
      k.kernel.ctx.events.nudge([eventId!])
      // Watched on the background pool: the owner's queries take request connections too.
      await eventually(
        async () =>
          (
            await db.background.inOrg(
              null,
              (tx) => tx.sql('select 1 from events where id = ? and processed_at is not null', [eventId]),
              'trellis_events',
            )
          ).length > 0,
      )
      t.pass('fanned out (the installation looked at, nobody wanting it) without a request connection')
      t.equal(held.count(), 2, 'the request pool stayed held throughout')
    } finally {
      await held.release()
    }
  })
})
