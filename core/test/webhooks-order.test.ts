import t from 'tap'
import { QUEUE_MATRIX, startTestKernel, createTenantWithAdmin } from './helpers/test-kernel.js'
import { startReceiver, eventually, type Received } from './helpers/receiver.js'
import { emitEvents, type EmitInput } from '../src/events/outbox.js'
import { orgTx } from '../src/kernel-context.js'

// Order per subject per endpoint (ADR 0013): a later event about a subject is not sent to an
// endpoint until the earlier one was delivered there or dead-lettered; each event carries its
// number in its subject's stream.

interface Seen {
  subject: string
  sequence: number
  id: string
  n: number
  status: number
}

/** A receiver that records, in arrival order, what it was sent and what it answered. */
async function recordingReceiver(
  answer: (body: { subject: string; sequence: number; data: { n: number } }, r: Received) => number,
) {
  const seen: Seen[] = []
  const rx = await startReceiver((r) => {
    const body = JSON.parse(r.body)
    const status = answer(body, r)
    seen.push({ subject: body.subject, sequence: body.sequence, id: body.id, n: body.data.n, status })
    return status
  })
  return { rx, seen }
}

/** Every request about a subject is for the event right after the last one answered 2xx (or a retry of it). */
function orderViolations(seen: Seen[]): string[] {
  const last = new Map<string, number>()
  const out: string[] = []
  for (const s of seen) {
    const prev = last.get(s.subject) ?? 0
    if (s.sequence !== prev + 1) out.push(`${s.subject}: #${s.sequence} sent after #${prev} was delivered`)
    if (s.status < 300 && s.sequence === prev + 1) last.set(s.subject, s.sequence)
  }
  return out
}

const thing = (subject: string, n: number): EmitInput => ({ type: 'test.order.changed', subject, data: { n } })

for (const setup of QUEUE_MATRIX) {
  const kind = `${setup.db}-${setup.queue}`
  t.test(`order per subject per endpoint on ${setup.name}`, async (t) => {
    const k = await startTestKernel(t, setup, {
      events: {
        egressAllow: ['127.0.0.1'],
        retryScheduleMs: [40, 80, 40, 80, 40, 80, 40, 80],
        sweepMs: 200,
        staleMs: 2000,
        totalTimeoutMs: 2000,
        connectTimeoutMs: 1000,
      },
    })
    const a = await createTenantWithAdmin(k, `order-${kind}`)
    const emit = (...events: EmitInput[]) => orgTx(k.kernel.ctx, a.orgId, (tx) => emitEvents(tx, ...events))
    const hook = async (url: string) => {
      const r = await k.req('POST', '/v1/webhooks', { token: a.token, body: { url, types: ['test.order.*'] } })
      if (r.status !== 201) throw new Error(`${r.status} ${JSON.stringify(r.body)}`)
      return r.body as { id: string }
    }

    await t.test(
      'events of one batch and of later transactions, with retries and jitter, arrive in order per subject at each endpoint',
      async (t) => {
        const count = new Map<string, number>()
        // Every third request about a subject fails: retries (with jitter) happen all the time.
        const flaky = await recordingReceiver((b) => {
          const n = (count.get(b.subject) ?? 0) + 1
          count.set(b.subject, n)
          return n % 3 === 0 ? 503 : 200
        })
        const steady = await recordingReceiver(() => 200)
        t.teardown(async () => Promise.all([flaky.rx.close(), steady.rx.close()]))
        const eps = [await hook(flaky.rx.url), await hook(steady.rx.url)]
        const subjects = ['order/a', 'order/b', 'order/c']
        // One transaction: one outbox batch, subjects interleaved.
        await emit(...Array.from({ length: 24 }, (_, i) => thing(subjects[i % 3]!, Math.floor(i / 3) + 1)))
        for (let n = 9; n <= 12; n++) await emit(...subjects.map((s) => thing(s, n)))
        const done = (seen: Seen[]) =>
          subjects.every((s) => seen.filter((x) => x.subject === s && x.status < 300).length >= 12)
        await eventually(async () => done(flaky.seen) && done(steady.seen), 30_000)
        for (const [name, r] of [
          ['flaky', flaky],
          ['steady', steady],
        ] as const) {
          t.same(
            orderViolations(r.seen),
            [],
            `${name}: nothing sent before the event before it about its subject was delivered`,
          )
          for (const s of subjects) {
            const ok = r.seen.filter((x) => x.subject === s && x.status < 300)
            t.same(
              ok.map((x) => x.sequence),
              Array.from({ length: 12 }, (_, i) => i + 1),
              `${name} ${s}: sequences 1…12 without a gap`,
            )
            t.same(
              ok.map((x) => x.n),
              Array.from({ length: 12 }, (_, i) => i + 1),
              `${name} ${s}: in the order written`,
            )
          }
        }
        t.ok(
          flaky.seen.some((x) => x.status === 503),
          'retries happened',
        )
        const listed = (await k.req('GET', '/v1/events?type=test.order.changed&limit=200', { token: a.token })).body
          .items as Array<{ id: string; subject: string; sequence: number }>
        const byId = new Map(listed.map((e) => [e.id, e]))
        t.ok(
          steady.seen.every((x) => byId.get(x.id)?.sequence === x.sequence && byId.get(x.id)?.subject === x.subject),
          'GET /v1/events shows the same id, subject and sequence',
        )
        for (const e of eps) await k.req('DELETE', `/v1/webhooks/${e.id}`, { token: a.token })
      },
    )

    await t.test(
      'a stuck subject holds back only itself at that endpoint; after its dead letter the next proceeds; a redelivery arrives late with its own sequence',
      async (t) => {
        let recovered = false
        // Refuses the first event about order/slow until it is dead-lettered.
        const blocked = await recordingReceiver((b) =>
          !recovered && b.subject === 'order/slow' && b.sequence === 1 ? 503 : 200,
        )
        const other = await recordingReceiver(() => 200)
        t.teardown(async () => Promise.all([blocked.rx.close(), other.rx.close()]))
        const ep = await hook(blocked.rx.url)
        const ep2 = await hook(other.rx.url)
        await emit(thing('order/slow', 1))
        await emit(thing('order/slow', 2))
        await eventually(async () => blocked.seen.some((x) => x.subject === 'order/slow'), 10_000)
        await emit(thing('order/fast', 1), thing('order/fast', 2))
        await eventually(
          async () =>
            other.seen.filter((x) => x.subject === 'order/slow').length >= 2 &&
            blocked.seen.filter((x) => x.subject === 'order/fast' && x.status < 300).length >= 2,
          10_000,
        )
        t.pass('the other subject, and the same subject at the other endpoint, were delivered meanwhile')

        // The dead letter of #1 releases #2: the receiver sees sequence 2 after never accepting 1.
        const second = await eventually(
          async () => blocked.seen.find((x) => x.subject === 'order/slow' && x.sequence === 2),
          15_000,
        )
        const slow = blocked.seen.filter((x) => x.subject === 'order/slow')
        const firstAttempts = slow.filter((x) => x.sequence === 1)
        t.equal(firstAttempts.length, 9, 'all attempts of #1 (one and eight retries) came before #2')
        t.ok(slow.indexOf(second) > slow.indexOf(firstAttempts.at(-1)!), '#2 only after #1 was dead-lettered')
        const [dead] = (await k.req('GET', `/v1/webhooks/${ep.id}/deliveries?status=dead_letter`, { token: a.token }))
          .body.items
        t.equal(dead.eventId, firstAttempts[0]!.id, 'the dead letter is #1')

        // Redelivered: it arrives after #2, out of order by design, with its original sequence and id.
        recovered = true
        t.equal(
          (await k.req('POST', `/v1/webhooks/${ep.id}/deliveries/${dead.id}/redeliver`, { token: a.token })).status,
          202,
        )
        const again = await eventually(
          async () => blocked.seen.find((x) => x.subject === 'order/slow' && x.sequence === 1 && x.status === 200),
          10_000,
        )
        t.equal(again.id, firstAttempts[0]!.id, 'the same event id')
        t.ok(blocked.seen.indexOf(again) > blocked.seen.indexOf(second), 'after #2')
        // A later event about the subject is not held back by the redelivery, nor sent before #2 was delivered.
        await emit(thing('order/slow', 3))
        const third = await eventually(
          async () => blocked.seen.find((x) => x.subject === 'order/slow' && x.sequence === 3 && x.status === 200),
          10_000,
        )
        t.ok(blocked.seen.indexOf(third) > blocked.seen.indexOf(second))
        for (const e of [ep, ep2]) await k.req('DELETE', `/v1/webhooks/${e.id}`, { token: a.token })
      },
    )
  })
}
