// The workflow runtime on an injected clock: schedules (everyMs, and cron in a time zone across
// a daylight-saving change and on the last day of the month) and timers fire exactly when the
// clock reaches them, never before. Moving a ManualClock runs the sweep it causes and resolves
// when that sweep is over, so "not yet" is asserted after a sweep that provably ran.
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { buildPlugin } from '@trellis/plugin-sdk'
import { ManualClock } from '../src/workflows/clock.js'
import { scheduleOf } from '../src/workflows/schedule-spec.js'
import { DB_KINDS, createTenantWithAdmin, startTestKernel } from './helpers/test-kernel.js'
import { eventually } from './helpers/receiver.js'
import { registerVersion } from './helpers/plugin-versions.js'

const dir = join(import.meta.dirname, 'fixtures', 'plugins', 'clockwork')
const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
const built = await buildPlugin({ dir, write: false })
const bundle = { manifest, code: built.code, sourceMap: built.sourceMap }
const at = (iso: string) => Date.parse(iso)
const utc = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString())

t.test('cron schedules follow the wall clock of their time zone', async (t) => {
  const nightly = scheduleOf({ cron: '0 2 * * *', timeZone: 'Europe/Berlin' })!
  const runs: Array<string | undefined> = []
  let from = at('2026-03-27T12:00:00Z')
  for (let i = 0; i < 3; i++) {
    const next = nightly.next(from)!
    runs.push(utc(next))
    from = next
  }
  // 02:00 CET, then the night 02:00 does not exist (03:00 CEST), then 02:00 CEST.
  t.same(runs, ['2026-03-28T01:00:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:00:00.000Z'])
  // The night 02:00 happens twice (CEST, then CET): it runs once.
  t.equal(utc(nightly.next(at('2026-10-24T12:00:00Z'))), '2026-10-25T00:00:00.000Z')
  t.equal(utc(nightly.next(at('2026-10-25T00:00:00Z'))), '2026-10-26T01:00:00.000Z')
  const monthEnd = scheduleOf({ cron: '0 22 L * *', timeZone: 'Europe/Berlin' })!
  t.equal(utc(monthEnd.next(at('2026-02-01T00:00:00Z'))), '2026-02-28T21:00:00.000Z', 'February, CET')
  t.equal(utc(monthEnd.next(at('2026-03-01T00:00:00Z'))), '2026-03-31T20:00:00.000Z', 'March, CEST')
  t.equal(utc(monthEnd.next(at('2028-02-01T00:00:00Z'))), '2028-02-29T21:00:00.000Z', 'a leap year')
  t.equal(utc(scheduleOf({ cron: '@daily' })!.next(at('2026-05-05T10:00:00Z'))), '2026-05-06T00:00:00.000Z', 'UTC')
  t.equal(scheduleOf({ everyMs: 60_000 })!.next(1000), 61_000)
  t.equal(scheduleOf({ events: ['x.y.z'] }), undefined, 'no schedule')
  t.throws(() => scheduleOf({ cron: '61 * * * *' }), 'a minute that does not exist')
  t.throws(() => scheduleOf({ cron: '0 2 * * *', timeZone: 'Mars/Olympus' }), 'a zone that does not exist')
})

t.test('a manual clock runs what came due once, and resolves when it has finished', async (t) => {
  const clock = new ManualClock(0)
  const seen: number[] = []
  const stop = clock.every(100, async () => {
    await new Promise((r) => setImmediate(r))
    seen.push(clock.now())
  })
  await clock.advance(99)
  t.same(seen, [], 'not due yet')
  await clock.advance(1)
  t.same(seen, [100], 'due: ran, and finished before advance resolved')
  await clock.advance(1000)
  t.same(seen, [100, 1100], 'ten periods skipped: one run')
  stop()
  await clock.advance(1000)
  t.same(seen, [100, 1100], 'stopped')
  await t.rejects(clock.set(0), 'never backwards')
})

for (const kind of DB_KINDS) {
  t.test(`schedules and timers on an injected clock (${kind})`, async (t) => {
    // A sweep on every move of the clock; installations are looked at on every sweep.
    const clock = new ManualClock(at('2026-03-27T12:00:00Z'))
    const k = await startTestKernel(t, kind, {
      plugins: { sandboxWorkers: 1 },
      workflows: { clock, sweepMs: 1, scheduleScanMs: 1 },
    })
    await registerVersion(k, bundle)
    const a = await createTenantWithAdmin(k, `clock-${kind}`)
    const inst = await k.req('POST', '/v1/installations', {
      token: a.token,
      body: { plugin: '@acme/clockwork', version: '1.0.0', capabilities: manifest.capabilities },
    })
    t.equal(inst.status, 201)
    const nextAt = async (workflow: string) => {
      const [s] = await k.ownerSql(`select next_at from workflow_schedules where tenant_id = ? and workflow = ?`, [
        a.orgId,
        workflow,
      ])
      return s ? new Date(s.next_at).toISOString() : undefined
    }
    const runs = async (workflow: string) =>
      (
        await k.ownerSql(
          `select input ->> 'scheduledAt' as at, started_by from workflow_instances where tenant_id = ? and workflow = ? order by started_at`,
          [a.orgId, workflow],
        )
      ).map((r) => `${r.started_by} ${r.at}`)

    await clock.advance(1)
    t.equal(await nextAt('nightly'), '2026-03-28T01:00:00.000Z', 'nightly: 02:00 CET')
    t.equal(await nextAt('monthEnd'), '2026-03-31T20:00:00.000Z', 'month end: 22:00 CEST on the 31st')
    t.equal(await nextAt('hourly'), '2026-03-27T13:00:00.001Z', 'hourly: an hour after it was first seen')

    /** A sweep a millisecond before `due` starts nothing; the sweep at `due` starts it; then it is due at `next`. */
    const firesExactlyAt = async (t: Test, workflow: string, due: string, next: string, why: string) => {
      const before = await runs(workflow)
      await clock.set(at(due) - 1)
      t.same(await runs(workflow), before, `${workflow}: a millisecond early, the sweep ran and started nothing`)
      await clock.set(at(due))
      t.same(await runs(workflow), [...before, `schedule ${due}`], `${workflow}: started at ${due}`)
      t.equal(await nextAt(workflow), next, why)
    }

    await t.test('everyMs fires when the clock reaches it, not a millisecond before', async (t) => {
      await firesExactlyAt(t, 'hourly', '2026-03-27T13:00:00.001Z', '2026-03-27T14:00:00.001Z', 'an hour later')
    })

    await t.test('a nightly cron in Europe/Berlin across the change to summer time', async (t) => {
      await firesExactlyAt(t, 'nightly', '2026-03-28T01:00:00.000Z', '2026-03-29T01:00:00.000Z', 'no 02:00: 03:00 CEST')
      await firesExactlyAt(t, 'nightly', '2026-03-29T01:00:00.000Z', '2026-03-30T00:00:00.000Z', '02:00 CEST from now')
      await firesExactlyAt(t, 'nightly', '2026-03-30T00:00:00.000Z', '2026-03-31T00:00:00.000Z', 'and the night after')
    })

    await t.test('the last day of the month', async (t) => {
      await firesExactlyAt(t, 'monthEnd', '2026-03-31T20:00:00.000Z', '2026-04-30T20:00:00.000Z', 'April has 30 days')
    })

    await t.test('a schedule the kernel cannot read is refused when the version is registered', async (t) => {
      for (const [start, field] of [
        [{ cron: '61 * * * *' }, 'minute'],
        [{ cron: '0 2 * * *', timeZone: 'Mars/Olympus' }, 'Mars/Olympus'],
      ] as const) {
        const bad = structuredClone(manifest)
        bad.version = '1.0.1'
        bad.workflows.nightly.start = start
        const err = await registerVersion(k, { ...bundle, manifest: bad }).then(
          () => undefined,
          (e: { code?: string; details?: { problems?: Array<{ pointer: string; message: string }> } }) => e,
        )
        t.equal(err?.code, 'PLG_ERR_BUNDLE_INVALID', `${JSON.stringify(start)} is refused`)
        t.equal(err?.details?.problems?.[0]?.pointer, '/workflows/nightly/start')
        t.match(err?.details?.problems?.[0]?.message, field)
      }
      const stored = await k.ownerSql(
        `select 1 from plugin_versions where name = '@acme/clockwork' and version = '1.0.1'`,
      )
      t.equal(stored.length, 0, 'nothing was stored')
    })

    await t.test('a scheduled run is an ordinary instance that completes', async (t) => {
      const done = await eventually(async () => {
        const [i] = await k.ownerSql(
          `select status, output from workflow_instances where tenant_id = ? and workflow = 'monthEnd'`,
          [a.orgId],
        )
        return i?.status === 'completed' ? i : undefined
      }, 20_000)
      t.same(done.output, { ran: true, scheduledAt: '2026-03-31T20:00:00.000Z' })
    })

    await t.test('a timer wakes its instance when the clock reaches it', async (t) => {
      const started = await k.req('POST', '/v1/workflows/instances', {
        token: a.token,
        body: { plugin: '@acme/clockwork', workflow: 'snooze', input: { ms: 3_600_000 } },
      })
      t.equal(started.status, 201)
      const id = started.body.id as string
      const status = async () => (await k.req('GET', `/v1/workflows/instances/${id}`, { token: a.token })).body.status
      await eventually(async () => (await status()) === 'waiting', 20_000)
      const [w] = await k.ownerSql(`select run_at from workflow_instances where id = ?`, [id])
      const wakeAt = new Date(w.run_at).getTime()
      t.equal(wakeAt, clock.now() + 3_600_000, 'due an hour after the step ran, by the injected clock')
      await clock.set(wakeAt - 1)
      t.equal(await status(), 'waiting', 'a millisecond early: still asleep after the sweep')
      await clock.set(wakeAt)
      t.equal(
        await eventually(async () => ((await status()) === 'completed' ? 'completed' : undefined), 20_000),
        'completed',
      )
    })
  })
}
