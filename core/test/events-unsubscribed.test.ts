import t, { type Test } from 'tap'
import { DB_KINDS, createTenantWithAdmin } from './helpers/test-kernel.js'
import { eventually } from './helpers/receiver.js'
import { startSubscribersKernel } from './helpers/subscribers-kernel.js'
import { builtFixture, registerVersion } from './helpers/plugin-versions.js'
import { emitEvents } from '../src/events/outbox.js'
import { orgTx } from '../src/kernel-context.js'

// An event nobody subscribes to is written already processed, in the write's own statement
// (ADR 0082); a subscriber that appears — in any process, whatever this process has cached —
// still gets every event emitted after it appeared.
for (const kind of DB_KINDS)
  t.test(`events nobody subscribes to on ${kind}`, async (t) => {
    const { k, receiver, index, createRole, otherProcessEndpoint, deliveredRoles } = await startSubscribersKernel(
      t,
      kind,
    )
    // The outbox row of a role's creation: what was written and whether the dispatcher ever took it.
    const eventOf = async (roleId: string) => {
      const [row] = await k.ownerSql<{
        id: string
        subject: string
        seq: string | null
        dispatched_at: Date | null
        processed_at: Date | null
        at_write: boolean
      }>(
        `select id, subject, seq, dispatched_at, processed_at, processed_at = time as at_write from events
          where type = 'kernel.role.created' and data ->> 'roleId' = ?`,
        [roleId],
      )
      if (!row) throw new Error(`no event for role ${roleId}`)
      return row
    }
    // Whether the outbox row `id` was written processed (at its own transaction's time).
    const processedAtWrite = async (id: string) =>
      (await k.ownerSql<{ w: boolean }>('select processed_at = time as w from events where id = ?', [id]))[0]!.w
    const install = async (t: Test, token: string, plugin: string, capabilities: string[]) => {
      const inst = await k.req('POST', '/v1/installations', {
        token,
        body: { plugin, version: '1.0.0', capabilities },
      })
      t.equal(inst.status, 201, JSON.stringify(inst.body))
    }
    await t.test("written processed in the write's own statement: never dispatched, never numbered", async (t) => {
      const a = await createTenantWithAdmin(k, `un-a-${kind}`)
      await index.load(a.orgId)
      const role = await createRole(a.token)
      const ev = await eventOf(role.id)
      t.ok(ev.at_write, "processed at the writing transaction's own time")
      t.equal(ev.dispatched_at, null, 'never dispatched')
      t.equal(ev.seq, null, 'never fanned out')
      const seqs = await k.ownerSql('select 1 from event_subject_seqs where subject = ?', [ev.subject])
      t.equal(seqs.length, 0, "its subject's counter was never touched")
      const listed = await k.req('GET', '/v1/events?type=kernel.role.created', { token: a.token })
      const item = listed.body.items.find((i: { id: string }) => i.id === ev.id)
      t.ok(item, 'replay still lists it')
      t.equal(item.sequence, null)
    })

    await t.test('a webhook created after the subscribers were cached gets every event from the first', async (t) => {
      const a = await createTenantWithAdmin(k, `un-b-${kind}`)
      await index.load(a.orgId)
      t.equal(index.unsubscribedGen(a.orgId, 'kernel.role.created'), '0', 'cached: nobody subscribes')
      // Created by another process: this process's cache is not told, the check in the insert is what holds.
      const hookId = await otherProcessEndpoint(a.orgId, ['kernel.role.*'])
      const roles = [await createRole(a.token), await createRole(a.token), await createRole(a.token)]
      await receiver.until(() => roles.every((r) => deliveredRoles().includes(r.id)))
      const first = await eventOf(roles[0]!.id)
      t.notOk(first.at_write, 'the first was written pending, though the cache said nobody subscribed')
      t.equal(Number(first.seq), 1, 'and numbered first in its subject')
      t.equal(index.unsubscribedGen(a.orgId, 'kernel.role.created'), undefined, 'the cache was read again')
      t.not(index.unsubscribedGen(a.orgId, 'kernel.api_key.created'), undefined, 'other types still skip dispatch')
      await k.req('DELETE', `/v1/webhooks/${hookId}`, { token: a.token })
    })

    await t.test('attacked: writes racing the webhook creation, none after it is missed', async (t) => {
      const a = await createTenantWithAdmin(k, `un-c-${kind}`)
      await index.load(a.orgId)
      let created = false
      let stop = false
      const after: string[] = []
      const writer = async () => {
        while (!stop) {
          const wasCreated = created
          const role = await createRole(a.token)
          if (wasCreated) after.push(role.id)
        }
      }
      const writers = [writer(), writer(), writer(), writer()]
      await createRole(a.token)
      const hook = await k.req('POST', '/v1/webhooks', {
        token: a.token,
        body: { url: receiver.url, types: ['kernel.role.created'] },
      })
      t.equal(hook.status, 201)
      created = true
      while (after.length < 20) await createRole(a.token).then((r) => after.push(r.id))
      stop = true
      await Promise.all(writers)
      await receiver.until(() => after.every((id) => deliveredRoles().includes(id)), 20_000)
      t.pass(`all ${after.length} writes sent after the webhook existed were delivered`)
      await k.req('DELETE', `/v1/webhooks/${hook.body.id}`, { token: a.token })
    })

    await t.test('an endpoint deleted: once re-read, its types skip dispatch again', async (t) => {
      const a = await createTenantWithAdmin(k, `un-d-${kind}`)
      const hook = await k.req('POST', '/v1/webhooks', { token: a.token, body: { url: receiver.url, types: ['*'] } })
      await index.load(a.orgId)
      const before = await createRole(a.token)
      t.notOk((await eventOf(before.id)).at_write, 'pending while the endpoint wants it')
      t.equal((await k.req('DELETE', `/v1/webhooks/${hook.body.id}`, { token: a.token })).status, 204)
      await index.load(a.orgId)
      const role = await createRole(a.token)
      t.ok((await eventOf(role.id)).at_write, 'processed at write')
    })

    await t.test('an installation that subscribes: its events stay pending, from the first', async (t) => {
      const a = await createTenantWithAdmin(k, `un-e-${kind}`)
      await registerVersion(k, await builtFixture('notes')).catch(() => undefined)
      await index.load(a.orgId)
      const emit = () =>
        orgTx(k.kernel.ctx, a.orgId, (tx) =>
          emitEvents(tx, { type: 'notes.note.created', subject: 'note/1', data: { noteId: '1' } }),
        )
      const [skipped] = await emit()
      t.ok(await processedAtWrite(skipped!), 'before the install nobody wants it')
      await install(t, a.token, '@acme/notes', [
        'data',
        'events:emit:notes.note.*',
        'events:subscribe:notes.note.created',
        'secrets',
      ])
      const [id] = await emit()
      t.notOk(await processedAtWrite(id!), 'pending for the plugin, though the cache was older than the install')
      await index.load(a.orgId)
      t.equal(index.unsubscribedGen(a.orgId, 'notes.note.created'), undefined, 'the re-read cache knows it')
      t.not(index.unsubscribedGen(a.orgId, 'kernel.role.created'), undefined, 'and only its types')
    })

    await t.test('an installation with workflows wants what they start on and wait for, nothing else', async (t) => {
      const a = await createTenantWithAdmin(k, `un-w-${kind}`)
      await registerVersion(k, await builtFixture('flows')).catch(() => undefined)
      await install(t, a.token, '@acme/flows', [
        'data',
        'workflows',
        'events:emit:flows.**',
        'events:subscribe:flows.**',
      ])
      await index.load(a.orgId)
      const emit = (type: string) =>
        orgTx(k.kernel.ctx, a.orgId, (tx) => emitEvents(tx, { type, subject: 'order/1', data: { orderId: '1' } }))
      const written = async (type: string) => processedAtWrite((await emit(type))[0]!)
      t.notOk(await written('flows.order.placed'), 'a workflow starts on it: pending')
      t.notOk(await written('flows.shipment.arrived'), 'a workflow waits for it: pending')
      t.ok(await written('flows.order.cancelled'), 'no workflow or handler wants it: processed at write')
      t.ok(await written('kernel.role.created'), "nor the kernel's events")
    })

    await t.test('a kernel handler in this process wants its types: they stay pending and reach it', async (t) => {
      const a = await createTenantWithAdmin(k, `un-f-${kind}`)
      await index.load(a.orgId)
      const seen: string[] = []
      k.kernel.ctx.events.on('kernel.api_key.created', (e) => void seen.push(e.subject))
      const key = await k.req('POST', '/v1/api-keys', {
        token: a.token,
        body: { name: 'k1', permissions: ['users.read'] },
      })
      t.equal(key.status, 201)
      await eventually(async () => seen.length > 0)
      const [row] = await k.ownerSql<{ w: boolean }>(
        `select processed_at = time as w from events where type = 'kernel.api_key.created' and tenant_id = ?`,
        [a.orgId],
      )
      t.notOk(row!.w, 'not processed at write')
    })

    await t.test('a request transaction may not back-date a processed event, number it or stamp it', async (t) => {
      const a = await createTenantWithAdmin(k, `un-g-${kind}`)
      const insert = (extra: string) =>
        k.appSql(
          a.orgId,
          `insert into events (id, type, source, subject, data, ${extra.split('=')[0]}) values (gen_random_uuid(), 'kernel.role.created', 's', 'x', '{}', ${extra.split('=')[1]})`,
        )
      await t.rejects(insert(`processed_at=now() - interval '1 day'`), { code: '42501' }, 'back-dated')
      await t.rejects(insert('seq=1'), { code: '42501' }, 'numbered')
      await t.rejects(insert('dispatched_at=now()'), { code: '42501' }, 'stamped dispatched')
      await t.resolves(insert('processed_at=now()'), "processed at the transaction's own time is allowed")
    })
  })
