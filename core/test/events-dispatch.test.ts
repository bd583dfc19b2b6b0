import t from 'tap'
import { QUEUE_MATRIX, startTestKernel, createTenantWithAdmin } from './helpers/test-kernel.js'
import { eventually } from './helpers/receiver.js'
import { emitEvents } from '../src/events/outbox.js'
import { orgTx } from '../src/kernel-context.js'

for (const setup of QUEUE_MATRIX) {
  const kind = `${setup.db}-${setup.queue}`
  t.test(`dispatch on ${setup.name}`, async (t) => {
    // No sweep and nothing goes stale during the test: whatever arrives was handed over by the
    // committing transaction, or ran again from the queue.
    const k = await startTestKernel(t, setup, { events: { sweepMs: 3_600_000, staleMs: 3_600_000 } })
    const a = await createTenantWithAdmin(k, `disp-${kind}`)
    const events = k.kernel.ctx.events
    const roles: string[] = []
    const things: number[] = []
    events.on('kernel.role.created', (e) => void roles.push((e.data as { name: string }).name))
    events.on('test.thing.changed', (e) => void things.push((e.data as { n: number }).n))
    // No plugins here: a sink that only counts the fan-outs run per tenant (each asks for its subscriptions).
    const asked = new Map<string, number>()
    events.setPluginSink({
      async subscriptions(tenantId) {
        asked.set(tenantId, (asked.get(tenantId) ?? 0) + 1)
        return []
      },
      async deliver() {},
    })
    const fanOutsOf = (tenantId: string) => {
      const before = asked.get(tenantId) ?? 0
      return () => (asked.get(tenantId) ?? 0) - before
    }

    await t.test('a committed change reaches its subscribers without any search of the outbox', async (t) => {
      t.equal(
        (await k.req('POST', '/v1/roles', { token: a.token, body: { name: 'picker', permissions: [] } })).status,
        201,
      )
      await eventually(async () => roles.includes('picker'), 5_000)
      t.pass('delivered')
    })

    await t.test(
      'an event waiting for an earlier one about its subject runs again once that one is done',
      async (t) => {
        const thing = { type: 'test.thing.changed', subject: 'thing/1' }
        // The first is committed but never handed to this dispatcher (as if another process wrote it).
        await k.kernel.ctx.db.inOrg(a.orgId, (tx) => emitEvents(tx, { ...thing, data: { n: 1 } }))
        const fanOuts = fanOutsOf(a.orgId)
        await orgTx(k.kernel.ctx, a.orgId, (tx) => emitEvents(tx, { ...thing, data: { n: 2 } }))
        // Not a pause: the second's fan-out provably ran, found the first unprocessed, and ran again.
        await eventually(async () => fanOuts() >= 2, 10_000)
        t.same(things, [], 'the second waits for the first')
        events.nudge() // the search the sweep would make
        await eventually(async () => things.length === 2, 10_000)
        t.same(things, [1, 2], 'in order, and the second was not left for the stale sweep')
      },
    )
  })
}
