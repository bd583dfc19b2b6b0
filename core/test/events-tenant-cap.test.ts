import t from 'tap'
import { randomBytes } from 'node:crypto'
import { DB_KINDS, startTestKernel, createTenantWithAdmin } from './helpers/test-kernel.js'
import { BullMqJobQueue } from '../src/events/bullmq-queue.js'
import type { QueueJob } from '../src/events/queue.js'
import { eventually } from './helpers/receiver.js'

const REDIS_URL = process.env.TRELLIS_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

// The queue's per-tenant cap in the running kernel: a tenant past it is held back, not another
// tenant, and what it is refused waits in the outbox until the sweep queues it again.
for (const kind of DB_KINDS)
  t.test(`a tenant at its queue cap holds back only itself, and loses nothing on ${kind}`, async (t) => {
    const queue = new BullMqJobQueue(
      REDIS_URL,
      'tenant-cap',
      `trellis-cap-${process.pid}-${randomBytes(4).toString('hex')}`,
      undefined,
      { tenantCap: 1 },
    )
    const refused = new Map<string, number>()
    const add = queue.add.bind(queue)
    queue.add = async (jobs: QueueJob[]) => {
      const r = await add(jobs)
      for (const id of r.refused) {
        const tenant = jobs.find((j) => j.id === id)!.data.tenantId as string
        refused.set(tenant, (refused.get(tenant) ?? 0) + 1)
      }
      return r
    }
    const k = await startTestKernel(t, kind, { events: { queue, sweepMs: 200, staleMs: 1000 } })
    const busy = await createTenantWithAdmin(k, 'cap-busy')
    const quiet = await createTenantWithAdmin(k, 'cap-quiet')

    let open!: () => void
    const gate = new Promise<void>((r) => (open = r))
    const handled = new Map<string, Set<string>>([
      [busy.orgId, new Set()],
      [quiet.orgId, new Set()],
    ])
    k.kernel.ctx.events.on('kernel.role.created', async (e) => {
      handled.get(e.tenantId)?.add((e.data as { name: string }).name)
      // The busy tenant's handler is slow: its first job holds the tenant's only queue slot.
      if (e.tenantId === busy.orgId) await gate
    })
    const role = async (s: { token: string }, name: string) =>
      t.equal(
        (await k.req('POST', '/v1/roles', { token: s.token, body: { name, permissions: ['users.read'] } })).status,
        201,
      )

    await role(busy, 'b0')
    await eventually(async () => handled.get(busy.orgId)!.has('b0'), 30_000)
    for (let i = 1; i <= 4; i++) await role(busy, `b${i}`)
    await eventually(async () => (refused.get(busy.orgId) ?? 0) > 0, 30_000)
    t.pass('the busy tenant is refused queue slots past its cap')

    await role(quiet, 'q0')
    await eventually(async () => handled.get(quiet.orgId)!.has('q0'), 30_000)
    t.notOk(refused.has(quiet.orgId), 'the quiet tenant is never refused')
    t.notOk(handled.get(busy.orgId)!.has('b4'), 'and was served while the busy tenant still waited')

    open()
    await eventually(async () => handled.get(busy.orgId)!.size === 5, 60_000)
    t.same(
      [...handled.get(busy.orgId)!].sort(),
      ['b0', 'b1', 'b2', 'b3', 'b4'],
      'every refused event came back from the outbox',
    )
  })
