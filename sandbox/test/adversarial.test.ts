// Runs the hostile corpus against one sandbox while a well-behaved tenant keeps invoking
// beside it. Each case runs as its own tenant, so a case that patches builtins only harms
// itself, which is the property under test.
import t from 'tap'
import { TrellisError } from '@trellis/plugin-sdk'
import { SBX, Sandbox } from '../src/index.js'
import type { HostCallHandler, SandboxLimits } from '../src/index.js'
import { bodiesBundle } from './fixtures/bundles.js'
import { corpus } from './fixtures/hostile-corpus.js'
import { call } from './fixtures/harness.js'

const LIMITS: Partial<SandboxLimits> = {
  cpuMs: 250,
  wallMs: 1500,
  memoryMb: 32,
  maxHostCalls: 50,
  maxInputBytes: 64 * 1024,
  maxOutputBytes: 256 * 1024,
  maxLogLines: 100,
  maxLogBytes: 16 * 1024,
}
// A case whose expected outcome is not a timeout does little work, but on a loaded machine that
// work can take longer than 250 ms of wall time (isolated-vm's timeout is a wall-clock timer): it
// runs with limits far above its work, so only the outcome it is built to reach can end it.
const ROOMY: Partial<SandboxLimits> = { ...LIMITS, cpuMs: 5000, wallMs: 8000 }
// Slack for the parent to hear about a deadline the worker enforced (and for a busy CI box).
const DEADLINE_SLACK_MS = 1500

const sandbox = await Sandbox.create({ workers: 2, hangGraceMs: 2000, quietWorkers: true })
t.teardown(() => sandbox.close())

const strict = corpus.filter((c) => !c.sloppy)
const sloppy = corpus.filter((c) => c.sloppy)
const hostileStrict = bodiesBundle('@evil/strict', Object.fromEntries(strict.map((c, i) => [`c${i}`, c.body])))
const hostileSloppy = bodiesBundle(
  '@evil/sloppy',
  Object.fromEntries(sloppy.map((c, i) => [`c${i}`, c.body])),
  '1.0.0',
  false,
)
const good = bodiesBundle('@good/echo', {
  echo: `const r = await host.call('echo', { n: input }); return { n: r.n, tenant: ctx.tenantId }`,
})
await Promise.all([sandbox.load(hostileStrict), sandbox.load(hostileSloppy), sandbox.load(good)])

let hostCalls = 0
const hostileHost: HostCallHandler = (op, args, meta) => {
  hostCalls++
  if (op === 'echo') return Promise.resolve(args)
  if (op === 'deny')
    return Promise.reject(new TrellisError('KRN_ERR_CAPABILITY_DENIED', 403, 'Capability denied', 'denied'))
  // 'hang': settles only when the sandbox gives up on the invocation
  return new Promise((resolve) => meta.signal.addEventListener('abort', () => resolve(null)))
}

// Warm both workers up before measuring the baseline; the good tenant has a track record
// (it is past probation) before the hostile ones arrive.
for (let i = 0; i < 20; i++)
  await call(sandbox, good, 'echo', { tenant: `warm-${i % 4}`, input: i, onHostCall: hostileHost })
for (let i = 0; i < 5; i++)
  await call(sandbox, good, 'echo', {
    tenant: 'good-tenant',
    input: i,
    onHostCall: hostileHost,
    limits: { wallMs: 5000 },
  })
const baseline = await sandbox.stats({ refresh: true })
const goodWorkerPid = (await call(sandbox, good, 'echo', { tenant: 'good-tenant', input: 0, onHostCall: hostileHost }))
  .metrics.workerPid
const parentHeapBefore = process.memoryUsage().heapUsed

// The well-behaved tenant, invoking throughout.
let goodOk = 0
const goodFailures: string[] = []
let stop = false
const goodLoop = (async () => {
  let n = 0
  while (!stop) {
    n++
    try {
      const res = await call(sandbox, good, 'echo', {
        tenant: 'good-tenant',
        input: n,
        onHostCall: hostileHost,
        limits: { wallMs: 5000 },
      })
      if ((res.output as { n: number }).n === n) goodOk++
      else goodFailures.push(`wrong output ${JSON.stringify(res.output)}`)
    } catch (err) {
      goodFailures.push(String((err as TrellisError).code ?? err))
    }
    await new Promise((r) => setTimeout(r, 5))
  }
})()

const all = [
  ...strict.map((c, i) => ({ c, bundle: hostileStrict, entry: `c${i}` })),
  ...sloppy.map((c, i) => ({ c, bundle: hostileSloppy, entry: `c${i}` })),
]
const cases = all.filter(({ c }) => !c.solo)
const soloCases = all.filter(({ c }) => c.solo)

// Four at a time, bounded so the suite stays fast; worker killers one at a time.
const batches = [
  ...Array.from({ length: Math.ceil(cases.length / 4) }, (_, i) => cases.slice(i * 4, i * 4 + 4)),
  ...soloCases.map((c) => [c]),
]
for (const [i, batch] of batches.entries()) {
  await Promise.all(
    batch.map(({ c, bundle, entry }, j) =>
      t.test(c.name, async (t) => {
        // A worker killer waits for the replacement of the worker the previous one killed: its
        // time is then its own, not a worker's start on a loaded machine.
        if (c.solo) await workersUp(2)
        const limits = c.codes?.includes(SBX.TIMEOUT.code) ? LIMITS : ROOMY
        const started = performance.now()
        let outcome: { ok: true; output: unknown } | { ok: false; code: string; err: unknown }
        try {
          const res = await call(sandbox, bundle, entry, {
            tenant: `hostile-${i}-${j}`,
            onHostCall: hostileHost,
            limits,
          })
          outcome = { ok: true, output: res.output }
        } catch (err) {
          outcome = { ok: false, code: (err as TrellisError).code, err }
        }
        const elapsed = performance.now() - started
        t.ok(elapsed < limits.wallMs! + DEADLINE_SLACK_MS, `ended within its deadline (${Math.round(elapsed)} ms)`)
        if (c.codes) {
          t.notOk(outcome.ok, 'rejected')
          if (!outcome.ok) {
            t.ok(c.codes.includes(outcome.code), `code ${outcome.code} is one of ${c.codes.join(', ')}`)
            t.ok(outcome.err instanceof TrellisError, 'a TrellisError')
            t.notMatch(
              String((outcome.err as Error).stack),
              /\/work\/main\/sandbox\/src\/worker|isolated-vm|bootstrap/,
              'no worker internals in the stack',
            )
          }
        } else {
          t.ok(outcome.ok, `resolved${outcome.ok ? '' : ` (got ${outcome.code}: ${(outcome.err as Error).message})`}`)
          if (outcome.ok) t.same(outcome.output, c.output)
        }
      }),
    ),
  )
}

// (No await between subtests at top level: tap ends the root test when it goes idle.)
t.test('the well-behaved tenant kept succeeding throughout', async (t) => {
  stop = true
  await goodLoop
  t.same(goodFailures, [])
  t.ok(goodOk >= 10, `${goodOk} good invocations succeeded`)
})

t.test('only the worker killers cost a worker; the host process is intact', async (t) => {
  const after = await sandbox.stats()
  t.ok(after.restarts <= soloCases.length, `${after.restarts} worker restarts`)
  t.equal(after.workers.length, 2, 'replacements are running')
  t.ok(
    after.workers.some((w) => w.pid === goodWorkerPid),
    "the good tenant's worker never died",
  )
  t.equal(({} as Record<string, unknown>).isAdmin, undefined, 'host Object.prototype untouched')
})

t.test('host-call floods never reached the handler beyond the limit', async (t) => {
  // every case together made at most (cases × limit) calls; the two floods alone would be 101 000
  t.ok(hostCalls <= all.length * LIMITS.maxHostCalls! + goodOk + 100, `${hostCalls} handler calls`)
})

t.test('memory returns to baseline once the hostile bundles are gone', async (t) => {
  await sandbox.unload(hostileStrict)
  await sandbox.unload(hostileSloppy)
  // No wait needed: each worker handles the unload before the stats request sent after it.
  const after = await sandbox.stats({ refresh: true })
  const heapBefore = baseline.workers.reduce((n, w) => n + w.isolateHeapBytes, 0)
  const heapAfter = after.workers.reduce((n, w) => n + w.isolateHeapBytes, 0)
  // the good tenant's isolate is the only new one
  t.ok(heapAfter - heapBefore < 16 * 1024 * 1024, `isolate heap ${mb(heapBefore)} → ${mb(heapAfter)} MB`)
  for (const w of after.workers) {
    // a replacement worker is compared with the larger of the originals
    const before =
      baseline.workers.find((b) => b.pid === w.pid) ??
      baseline.workers.reduce((a, b) => (a.rssBytes > b.rssBytes ? a : b))
    t.ok(
      w.rssBytes - before.rssBytes < 200 * 1024 * 1024,
      `worker ${w.pid} rss ${mb(before.rssBytes)} → ${mb(w.rssBytes)} MB`,
    )
  }
  t.ok(process.memoryUsage().heapUsed - parentHeapBefore < 64 * 1024 * 1024, 'parent heap did not balloon')
})

t.test('a host object kept from an earlier invocation is dead in a later one', async (t) => {
  const keeper = bodiesBundle('@evil/keeper', {
    keep: `globalThis.kept = host; return 'kept'`,
    use: `try { await globalThis.kept.call('echo', 'stale'); return 'used' } catch (e) { return e.code }`,
  })
  await sandbox.load(keeper)
  const seen: unknown[] = []
  const recording: HostCallHandler = async (_op, args) => (seen.push(args), args)
  await call(sandbox, keeper, 'keep', { tenant: 'keeper', onHostCall: recording, limits: { memoryMb: 32 } })
  const res = await call(sandbox, keeper, 'use', { tenant: 'keeper', onHostCall: recording, limits: { memoryMb: 32 } })
  t.equal(res.output, 'SBX_ERR_INVOCATION_ENDED')
  t.same(seen, [], 'the handler never saw the stale call')
})

t.test('a timed-out tenant gets a fresh isolate and works again', async (t) => {
  const b = bodiesBundle('@evil/recovering', { spin: 'if (input) while (true) {}; return "fine"' })
  await sandbox.load(b)
  const err = await call(sandbox, b, 'spin', { tenant: 'recover', input: true, limits: { cpuMs: 100 } }).catch((e) => e)
  t.equal(err.code, SBX.TIMEOUT.code)
  const res = await call(sandbox, b, 'spin', { tenant: 'recover', input: false, limits: { cpuMs: 100 } })
  t.equal(res.output, 'fine')
  t.equal(res.metrics.coldStart, true)
})

async function workersUp(n: number): Promise<void> {
  const end = Date.now() + 30_000
  while ((await sandbox.stats()).workers.length < n) {
    if (Date.now() > end) throw new Error(`fewer than ${n} workers after 30 s`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

function mb(n: number): number {
  return Math.round(n / 1048576)
}
