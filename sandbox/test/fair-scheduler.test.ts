// The worker's fair scheduler on its own, with an injected clock and event-loop turns: which
// tenant's run goes next when more are ready than may execute at once.
import t from 'tap'
import { FairScheduler, type Turn } from '../src/worker/fair-scheduler.mjs'

function setup(maxPerTenant: number, maxRunning?: number) {
  let clock = 0
  const turns: Array<() => void> = []
  const scheduler = new FairScheduler({ maxPerTenant, maxRunning, now: () => clock, defer: (fn) => turns.push(fn) })
  const order: string[] = []
  /** A run that takes `ms` of the clock and ends at once (as a run on the worker's thread does). */
  const sync = (tenant: string, ms: number, label = tenant) =>
    scheduler.submit(tenant, (turn) => {
      order.push(label)
      clock += ms
      turn.end()
    })
  /** Event-loop turns until nothing is left to do. */
  const drain = () => {
    for (let i = 0; turns.length > 0; i++) {
      if (i > 10_000) throw new Error('scheduler never settles')
      turns.shift()!()
    }
  }
  /** A run that holds its turn until the test ends it (as a run off the worker's thread does). */
  const held: Turn[] = []
  const started: string[] = []
  const hold = (tenant: string, label: string) =>
    scheduler.submit(tenant, (turn) => {
      started.push(label)
      held.push(turn)
    })
  return { scheduler, order, sync, drain, hold, held, started, advance: (ms: number) => (clock += ms) }
}

t.test('a light tenant goes ahead of a heavy tenant’s backlog', async (t) => {
  const { order, sync, drain } = setup(1)
  for (let i = 0; i < 10; i++) sync('heavy', 50, `h${i}`)
  sync('light', 0.1, 'light')
  drain()
  t.equal(order.length, 11, 'every run ran')
  t.ok(order.indexOf('light') <= 2, `light ran after at most two heavy runs: ${order.join(' ')}`)
  t.same(
    order.filter((x) => x !== 'light'),
    Array.from({ length: 10 }, (_, i) => `h${i}`),
    "a tenant's own runs keep their order",
  )
})

t.test('tenants with equal runs take turns', async (t) => {
  const { order, sync, drain } = setup(1)
  for (let i = 0; i < 4; i++) sync('a', 10, `a${i}`)
  for (let i = 0; i < 4; i++) sync('b', 10, `b${i}`)
  drain()
  // the first run of a starts at once; from then on neither is two runs ahead of the other
  let lead = 0
  for (const x of order) {
    lead += x.startsWith('a') ? 1 : -1
    t.ok(Math.abs(lead) <= 2, `balanced after ${x}`)
  }
})

t.test("a tenant's long runs never make another tenant wait for a slot", async (t) => {
  const { scheduler, drain, hold, held, started } = setup(2)
  for (let i = 0; i < 4; i++) hold('heavy', `h${i}`)
  hold('light', 'l0')
  drain()
  t.same(started, ['h0', 'h1', 'l0'], 'the heavy tenant runs two at once, the light one at once beside them')
  held.shift()!.end()
  drain()
  t.same(started, ['h0', 'h1', 'l0', 'h2'], 'a heavy slot freed goes to its next run')
  for (const turn of held.splice(0)) turn.end()
  drain()
  t.same(started, ['h0', 'h1', 'l0', 'h2', 'h3'])
  for (const turn of held.splice(0)) turn.end()
  t.equal(scheduler.running, 0)
})

t.test('with a limit on all runs, a freed slot goes to the tenant that used least', async (t) => {
  const { scheduler, drain, advance, hold, held, started } = setup(2, 2)
  hold('heavy', 'h0')
  hold('heavy', 'h1')
  hold('heavy', 'h2')
  hold('light', 'l0')
  drain()
  t.same(started, ['h0', 'h1'], 'two slots, both taken')
  t.equal(scheduler.running, 2)
  advance(30)
  held.shift()!.end()
  drain()
  t.same(started, ['h0', 'h1', 'l0'], 'the freed slot goes to the tenant that used none')
  held.shift()!.end()
  drain()
  t.same(started, ['h0', 'h1', 'l0', 'h2'])
  for (const turn of held.splice(0)) turn.end()
  t.equal(scheduler.running, 0)
})

t.test('ending a turn twice frees one slot only', async (t) => {
  const { scheduler, drain } = setup(1)
  let turn: Turn | undefined
  scheduler.submit('a', (x) => (turn = x))
  turn!.end()
  turn!.end()
  t.equal(scheduler.running, 0)
  drain()
})

t.test('an idle scheduler runs a run at once and forgets tenants once contention is over', async (t) => {
  const { scheduler, order, sync, drain } = setup(1)
  sync('a', 5)
  t.same(order, ['a'], 'ran synchronously: no queue, no waiting for a turn of the event loop')
  drain()
  for (let i = 0; i < 3; i++) sync('b', 5)
  sync('c', 5)
  drain()
  t.equal(order.length, 5)
  t.equal(scheduler.queued, 0)
  t.equal(scheduler.tenants.size, 0, 'nothing is kept per tenant')
})

t.test('runs of one burst of messages queue; a run after the burst has been read starts at once', async (t) => {
  const { order, sync, drain } = setup(1)
  // Messages read together are emitted in one batch of ticks, before any microtask runs.
  sync('a', 1, 'a1')
  sync('b', 1, 'b1')
  t.same(order, ['a1'], 'the rest of the burst waits for the next turn')
  drain()
  t.same(order, ['a1', 'b1'])
  await Promise.resolve()
  sync('a', 1, 'a2')
  // no turn of the event loop has passed, only the burst's microtasks
  await Promise.resolve()
  sync('c', 1, 'c1')
  t.same(order, ['a1', 'b1', 'a2', 'c1'], 'a message after the burst waits for no turn of the event loop')
  drain()
})
