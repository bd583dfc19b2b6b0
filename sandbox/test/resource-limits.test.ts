// Resource limits that protect a worker process and the tenants sharing it (ADR 0010): output
// measured inside the isolate, workers recycled above a memory ceiling, tenants that crash or
// exhaust a worker cordoned into a worker of their own, and bystanders of a lost worker told
// they may run again. Real worker processes throughout.
import t from 'tap'
import { SBX, Sandbox } from '../src/index.js'
import type { HostCallHandler, InvocationError, InvokeResult } from '../src/index.js'
import { bodiesBundle } from './fixtures/bundles.js'
import { call, rejection } from './fixtures/harness.js'

const plugin = bodiesBundle('@acme/limits', {
  echo: 'return input',
  wait: `return await host.call('wait', input)`,
  // holds `input` MB until its host call settles
  hog: `const hoard = []; for (let i = 0; i < input; i++) hoard.push(new Uint8Array(1 << 20).fill(i & 255)); const r = await host.call('wait', null); return [hoard.length, r]`,
  // 300k keys sharing one string: ~15 MB of heap, ~48 MB as JSON
  wide: `const s = 'v'.repeat(150); const o = {}; for (let i = 0; i < 300000; i++) o['k' + i] = s; return o`,
  overrun: `const a = []; a[2 ** 32 - 2] = 'x'; return a.indexOf('y')`,
})

// Settles 'wait' host calls when the test says so (or when the invocation is abandoned).
function gate() {
  const waiting: Array<(v: unknown) => void> = []
  const handler: HostCallHandler = () => new Promise((resolve) => waiting.push(resolve))
  return { handler, waiting, releaseAll: (v: unknown = 'released') => waiting.splice(0).forEach((r) => r(v)) }
}

// A bound for a positive signal, not a wait: on a loaded CI box a worker's replacement alone can
// take many seconds to start.
async function until(predicate: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error('condition not reached')
    await new Promise((r) => setTimeout(r, 20))
  }
}

t.test('a huge result is measured inside the isolate and refused with the output limit', async (t) => {
  const sandbox = await Sandbox.create({ workers: 1, quietWorkers: true })
  t.teardown(() => sandbox.close())
  await sandbox.load(plugin)
  const [before] = (await sandbox.stats()).workers
  // A 32 MB isolate cannot hold the 48 MB text: serialising it whole before measuring it ran
  // the isolate (and with several at once, the worker) out of memory.
  const err = await rejection(
    call(sandbox, plugin, 'wide', { tenant: 'wide', limits: { memoryMb: 32, cpuMs: 10_000, wallMs: 20_000 } }),
  )
  t.equal(err.code, SBX.PAYLOAD_TOO_LARGE.code)
  t.same(err.details, { what: 'output', limitBytes: 1024 * 1024 })
  const after = await sandbox.stats()
  t.equal(after.restarts, 0, 'the worker lived')
  t.equal(after.workers[0]!.pid, before!.pid)
  t.equal((await call(sandbox, plugin, 'echo', { tenant: 'wide', input: 1 })).output, 1)
})

t.test('a worker whose memory stays above the ceiling is recycled between invocations', async (t) => {
  const sandbox = await Sandbox.create({ workers: 1, workerRecycleMb: 160, monitorIntervalMs: 50, quietWorkers: true })
  t.teardown(() => sandbox.close())
  await sandbox.load(plugin)
  const old = (await sandbox.stats()).workers[0]!.pid
  const g = gate()
  // holds ~150 MB in its isolate while it awaits its host call
  const heavy = call(sandbox, plugin, 'hog', {
    tenant: 'heavy',
    input: 150,
    onHostCall: g.handler,
    limits: { memoryMb: 512, cpuMs: 10_000, wallMs: 30_000 },
  })
  await until(() => g.waiting.length === 1)
  // the ceiling is passed: a fresh worker takes the slot, the old one only finishes its work
  await until(async () => (await sandbox.stats()).workers[0]!.pid !== old)
  const next = await call(sandbox, plugin, 'echo', { tenant: 'light', input: 'fresh' })
  t.equal(next.output, 'fresh')
  t.not(next.metrics.workerPid, old, 'new work goes to the fresh worker')
  g.releaseAll('done')
  const res = await heavy
  t.same(res.output, [150, 'done'], 'the in-flight invocation finished on the recycled worker')
  t.equal(res.metrics.workerPid, old)
  await until(() => !processAlive(old))
  const stats = await sandbox.stats()
  t.equal(stats.recycles, 1)
  t.equal(stats.restarts, 0, 'nothing crashed')
  t.ok(
    stats.workers[0]!.rssBytes < 160 * 1024 * 1024,
    `fresh worker at ${Math.round(stats.workers[0]!.rssBytes / 1048576)} MB`,
  )
})

t.test(
  'a tenant that exhausts a shared worker is cordoned; bystanders fail retryable; others are unaffected',
  async (t) => {
    const sandbox = await Sandbox.create({
      workers: 2,
      workerMemoryMb: 400,
      monitorIntervalMs: 50,
      cordonMs: 10 * 60_000,
      quietWorkers: true,
    })
    t.teardown(() => sandbox.close())
    await sandbox.load(plugin)
    // all three tenants are past probation: the bomber behaved for its first calls
    for (const tenant of ['bystander', 'bomber', 'third'])
      for (let i = 0; i < 4; i++) await call(sandbox, plugin, 'echo', { tenant, input: i })
    const shared = (await sandbox.stats()).workers.map((w) => w.pid)

    const victim = gate()
    const inFlight = call(sandbox, plugin, 'wait', {
      tenant: 'bystander',
      input: 'x',
      onHostCall: victim.handler,
      limits: { wallMs: 30_000 },
    })
    await until(() => victim.waiting.length === 1)

    // eight parallel memory-heavy calls: no worker holds 8 × 80 MB within its 400 MB budget (a
    // tenant's plugins with one memory limit share one isolate, which that limit bounds (ADR
    // 0080): with eight limits the tenant holds eight isolates)
    const bombs = gate()
    const bombing = Array.from({ length: 8 }, (_, i) =>
      rejection(
        call(sandbox, plugin, 'hog', {
          tenant: 'bomber',
          input: 80,
          onHostCall: bombs.handler,
          limits: { memoryMb: 100 + i, cpuMs: 10_000, wallMs: 30_000 },
        }),
      ),
    )
    const bomberErrors = await Promise.all(bombing)
    for (const err of bomberErrors) {
      t.ok([SBX.WORKER_LOST.code, SBX.MEMORY.code].includes(err.code), `bomber got ${err.code}`)
      if (err.code === SBX.WORKER_LOST.code) t.equal(err.retryable, false, 'the culprit may not run again')
    }

    // the bystander's call either completed or failed in a way the kernel may retry once
    victim.releaseAll('completed')
    const outcome = await inFlight.then(
      (r: InvokeResult) => ({ ok: true as const, r }),
      (e: InvocationError) => ({ ok: false as const, e }),
    )
    if (outcome.ok) t.equal(outcome.r.output, 'completed')
    else {
      t.equal(outcome.e.code, SBX.WORKER_LOST.code)
      t.equal(outcome.e.retryable, true, 'retryable on the error')
      t.equal((outcome.e.details as { retryable?: boolean }).retryable, true, 'and in its details')
      t.equal(
        (await call(sandbox, plugin, 'echo', { tenant: 'bystander', input: 'again' })).output,
        'again',
        'the retry runs',
      )
    }

    const { cordons } = await sandbox.stats()
    t.same(
      cordons.map((c) => c.tenantId),
      ['bomber'],
      'only the bomber is cordoned',
    )
    await until(async () => (await sandbox.stats()).workers.length === 2)

    // from now on the bomber runs in a worker of its own…
    const mine = await call(sandbox, plugin, 'echo', { tenant: 'bomber', input: 'cordoned' })
    const cordonPid = (await sandbox.stats()).cordons[0]!.workerPid
    t.equal(mine.metrics.workerPid, cordonPid, 'the bomber runs in its cordon worker')
    const sharedNow = (await sandbox.stats()).workers.map((w) => w.pid)
    t.notOk(sharedNow.includes(cordonPid!), 'which is not a shared worker')

    // …so bombing again costs nobody else anything: a third tenant's in-flight call survives it
    const third = gate()
    const thirdCall = call(sandbox, plugin, 'wait', {
      tenant: 'third',
      input: 'x',
      onHostCall: third.handler,
      limits: { wallMs: 30_000 },
    })
    await until(() => third.waiting.length === 1)
    const again = gate()
    const secondWave = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        rejection(
          call(sandbox, plugin, 'hog', {
            tenant: 'bomber',
            input: 80,
            onHostCall: again.handler,
            limits: { memoryMb: 100 + i, cpuMs: 10_000, wallMs: 30_000 },
          }),
        ),
      ),
    )
    for (const err of secondWave)
      t.ok([SBX.WORKER_LOST.code, SBX.MEMORY.code].includes(err.code), `bomber got ${err.code} in its cordon`)
    third.releaseAll('unaffected')
    const thirdRes = await thirdCall
    t.equal(thirdRes.output, 'unaffected')
    t.notOk(thirdRes.metrics.workerPid === cordonPid, 'the third tenant never ran in the cordon')
    const after = await sandbox.stats()
    t.same(after.workers.map((w) => w.pid).sort(), [...sharedNow].sort(), 'no shared worker died in the second wave')
    t.ok(shared.length === 2)
  },
)

t.test('plugin code that overruns its CPU limit in a builtin kills only its worker, at once', async (t) => {
  const sandbox = await Sandbox.create({ workers: 2, quietWorkers: true, hangGraceMs: 5000 })
  t.teardown(() => sandbox.close())
  await sandbox.load(plugin)
  for (let i = 0; i < 4; i++) await call(sandbox, plugin, 'echo', { tenant: 'runner', input: i })
  const g = gate()
  const bystander = call(sandbox, plugin, 'wait', {
    tenant: 'steady',
    input: 1,
    onHostCall: g.handler,
    limits: { wallMs: 30_000 },
  })
  await until(() => g.waiting.length === 1)
  // Array.prototype.indexOf on a 2**32 - 1 long sparse array never looks for termination: it
  // ran until the parent gave up on the silent worker at the wall deadline plus grace (here
  // 60 s + 5 s), answering with the wall limit. Now the worker's watchdog ends it on the CPU limit.
  const err = await rejection(
    call(sandbox, plugin, 'overrun', { tenant: 'runner', limits: { cpuMs: 200, wallMs: 60_000 } }),
  )
  t.equal(err.code, SBX.TIMEOUT.code)
  t.same(err.details, { limit: 'cpu', limitMs: 200 }, 'stopped for its CPU limit, not at its deadline')
  g.releaseAll('fine')
  const res = await bystander.then(
    (r) => r.output,
    (e: InvocationError) => (e.code === SBX.WORKER_LOST.code && e.retryable === true ? 'retryable' : e.code),
  )
  t.ok(res === 'fine' || res === 'retryable', `the other tenant's call: ${String(res)}`)
  t.same(
    (await sandbox.stats()).cordons.map((c) => c.tenantId),
    ['runner'],
  )
})

t.test('what the worker reads of plugin values outside the isolate is bounded', async (t) => {
  const sandbox = await Sandbox.create({ workers: 1, quietWorkers: true })
  t.teardown(() => sandbox.close())
  // A stack line shaped to make the frame parser backtrack (quadratic on the worker's event
  // loop) is plugin-written text: it is dropped, not parsed.
  const crafted = `at ${' ('.repeat(4000)}${':1:1'.repeat(2000)}x`
  const b = bodiesBundle('@evil/stack', {
    crafted: `const e = new Error('x'); e.stack = ${JSON.stringify(crafted)}; throw e`,
  })
  await sandbox.load(b)
  const err = await rejection(call(sandbox, b, 'crafted', { tenant: 'stack' }))
  t.equal(err.code, SBX.PLUGIN_ERROR.code)
  t.notMatch(String(err.stack), / \( \(/, 'the crafted line is not in the stack')
  t.ok(String(err.stack).length < 1000)

  // A bundle cannot make its entry list (copied out of the isolate and parsed) arbitrarily long.
  const many = Array.from({ length: 20_000 }, (_, i) => `r${i}`)
  const code = `module.exports = { entries: { route: ${JSON.stringify(many)} }, invoke: async () => null }`
  const bloated = {
    id: '@evil/entries',
    version: '1.0.0',
    code,
    sha256: (await import('node:crypto')).createHash('sha256').update(code).digest('hex'),
  }
  const loadErr = await rejection(sandbox.load(bloated))
  t.equal(loadErr.code, SBX.BUNDLE_INVALID.code)
  t.match(loadErr.message, /@evil\/entries@1\.0\.0/, 'names the bundle')
})

t.test('log values that are not strings become bounded text inside the isolate', async (t) => {
  const sandbox = await Sandbox.create({ workers: 1, quietWorkers: true })
  t.teardown(() => sandbox.close())
  const b = bodiesBundle('@acme/logs', {
    log: `const sparse = []; sparse[2 ** 32 - 2] = 'x'
      host.log('info', new TypeError('boom'))
      host.log('info', { a: 1 })
      host.log('info', 42)
      host.log('info', sparse)
      host.log('info', 'with fields', { sparse })
      console.log('console', sparse)
      return 'logged'`,
  })
  await sandbox.load(b)
  const res = await call(sandbox, b, 'log', { tenant: 'logs' })
  t.equal(res.output, 'logged')
  const messages = res.logs.map((l) => l.message)
  t.same(messages.slice(0, 3), ['TypeError: boom', '{"a":1}', '42'])
  t.ok(
    messages[3] === '[value too large to log]' || messages[3] === '[unserialisable]',
    `sparse array logged as ${messages[3]}`,
  )
  t.equal(messages[4], 'with fields')
  t.equal(res.logs[4]!.fields, undefined, 'fields too large to serialise are left out')
  t.match(messages[5], /^console \[(value too large to log|unserialisable)\]$/)
})

t.test('a runtime SyntaxError is the plugin error; bundle-invalid names the bundle at load', async (t) => {
  const sandbox = await Sandbox.create({ workers: 1, quietWorkers: true })
  t.teardown(() => sandbox.close())
  const b = bodiesBundle('@acme/syntax', {
    detached: `Promise.resolve().then(() => JSON.parse('{')); await new Promise(() => {})`,
  })
  await sandbox.load(b)
  const err = await rejection(call(sandbox, b, 'detached', { tenant: 'syntax' }))
  t.equal(err.code, SBX.PLUGIN_ERROR.code)
  t.equal((err.details as { name?: string }).name, 'SyntaxError')
  t.notMatch(err.message, /undefined@undefined/)
  const broken = bodiesBundle('@acme/broken', { a: 'return 1' })
  const code = `${broken.code}\n}}`
  const loadErr = await rejection(
    sandbox.load({
      ...broken,
      code,
      sha256: (await import('node:crypto')).createHash('sha256').update(code).digest('hex'),
    }),
  )
  t.equal(loadErr.code, SBX.BUNDLE_INVALID.code)
  t.match(loadErr.message, /@acme\/broken@1\.0\.0/)
})

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
