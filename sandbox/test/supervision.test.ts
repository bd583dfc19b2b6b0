// Worker supervision: crashes, hangs and process budgets cost only the invocations the worker
// held; a replacement takes over. Also the isolate pool's eviction and per-key concurrency.
import t from 'tap'
import { SBX, Sandbox } from '../src/index.js'
import type { HostCallHandler } from '../src/index.js'
import { bodiesBundle } from './fixtures/bundles.js'
import { call, rejection } from './fixtures/harness.js'

const plugin = bodiesBundle('@acme/supervised', {
  echo: 'return input',
  wait: `return await host.call('wait', input)`,
  hog: `globalThis.hoard = []; for (let i = 0; i < input; i++) globalThis.hoard.push(new Uint8Array(1 << 20).fill(i & 255)); return await host.call('wait', null)`,
})

// Settles a 'wait' host call when the test says so (or when the invocation is abandoned).
function gate() {
  const waiting: Array<(v: unknown) => void> = []
  const aborted: boolean[] = []
  const handler: HostCallHandler = (_op, _args, meta) =>
    new Promise((resolve) => {
      waiting.push(resolve)
      meta.signal.addEventListener('abort', () => aborted.push(true))
    })
  return { handler, waiting, aborted, releaseAll: (v: unknown = 'released') => waiting.splice(0).forEach((r) => r(v)) }
}

async function until(predicate: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error('condition not reached')
    await new Promise((r) => setTimeout(r, 20))
  }
}

t.test('a crashed worker fails only what it held and is replaced', async (t) => {
  const sandbox = await Sandbox.create({ workers: 2, quietWorkers: true })
  t.teardown(() => sandbox.close())
  await sandbox.load(plugin)
  const g = gate()
  const held = call(sandbox, plugin, 'wait', { tenant: 'crash', input: 1, onHostCall: g.handler })
  await until(() => g.waiting.length === 1)
  const { workers } = await sandbox.stats()
  const victim = workers.find((w) => w.inflight === 1)!
  // elsewhere, another tenant's invocation is in flight on the other worker
  const other = workers.find((w) => w !== victim)!
  process.kill(victim.pid, 'SIGKILL')
  const err = await rejection(held)
  t.equal(err.code, SBX.WORKER_LOST.code)
  // it was awaiting a host call, so it cannot have killed the worker: it may run again
  t.equal(err.retryable, true)
  t.same((await sandbox.stats()).cordons, [], 'nobody is blamed for an unexplained death')
  await until(async () => (await sandbox.stats()).workers.length === 2)
  const after = await sandbox.stats()
  t.equal(after.restarts, 1)
  t.ok(
    after.workers.some((w) => w.pid === other.pid),
    'the other worker lives on',
  )
  t.notOk(
    after.workers.some((w) => w.pid === victim.pid),
    'the dead one is gone',
  )
  // the replacement serves the bundle (re-sent to it lazily)
  for (let i = 0; i < 6; i++)
    t.equal((await call(sandbox, plugin, 'echo', { tenant: `after-${i}`, input: i })).output, i)
})

t.test('a worker that stops answering is killed at its deadline and replaced', async (t) => {
  const sandbox = await Sandbox.create({ workers: 1, hangGraceMs: 300, quietWorkers: true })
  t.teardown(() => sandbox.close())
  await sandbox.load(plugin)
  const g = gate()
  const [w] = (await sandbox.stats()).workers
  const first = call(sandbox, plugin, 'wait', {
    tenant: 'hang-a',
    input: 1,
    onHostCall: g.handler,
    limits: { wallMs: 400 },
  })
  const second = call(sandbox, plugin, 'wait', {
    tenant: 'hang-b',
    input: 1,
    onHostCall: g.handler,
    limits: { wallMs: 5000 },
  })
  await until(() => g.waiting.length === 2)
  // SIGSTOP: the worker's own deadline timer can no longer fire, as in a wedged event loop
  process.kill(w!.pid, 'SIGSTOP')
  const [e1, e2] = await Promise.all([rejection(first), rejection(second)])
  // A stopped worker answers nothing: only the parent's deadline timer can have ended these.
  t.equal(e1.code, SBX.TIMEOUT.code, 'the invocation whose deadline passed times out')
  t.equal((e1.details as { limit?: string }).limit, 'wall')
  t.ok(e1.metrics!.wallMs >= 400, 'not before its deadline')
  t.equal(e2.code, SBX.WORKER_LOST.code, 'the other one held by the worker is lost')
  t.same(g.aborted.length, 2, 'host calls of both invocations were aborted')
  await until(async () => (await sandbox.stats()).workers.length === 1)
  t.equal((await call(sandbox, plugin, 'echo', { input: 'alive' })).output, 'alive')
})

t.test('a worker over its process memory budget is killed and replaced', async (t) => {
  const sandbox = await Sandbox.create({ workers: 1, workerMemoryMb: 200, monitorIntervalMs: 50, quietWorkers: true })
  t.teardown(() => sandbox.close())
  await sandbox.load(plugin)
  const g = gate()
  // (a CPU limit generous enough for filling 250 MB on a loaded machine: the budget must act first)
  const err = await rejection(
    call(sandbox, plugin, 'hog', {
      tenant: 'hog',
      input: 250,
      onHostCall: g.handler,
      limits: { memoryMb: 1024, cpuMs: 20_000, wallMs: 30_000 },
    }),
  )
  t.equal(err.code, SBX.WORKER_LOST.code)
  t.match(err.message, /memory budget/)
  await until(async () => (await sandbox.stats()).workers.length === 1)
  t.equal((await sandbox.stats()).restarts, 1)
  t.equal((await call(sandbox, plugin, 'echo', { input: 2 })).output, 2)
})

t.test("an installation's concurrent invocations each get a context, then queue", async (t) => {
  const sandbox = await Sandbox.create({ workers: 1, maxIsolatesPerKey: 2 })
  t.teardown(() => sandbox.close())
  await sandbox.load(plugin)
  const g = gate()
  const all = Array.from({ length: 6 }, (_, i) =>
    call(sandbox, plugin, 'wait', { tenant: 'busy', input: i, onHostCall: g.handler }),
  )
  await until(() => g.waiting.length === 2)
  // All six have reached the worker (its count of invocations in flight), and both contexts
  // the key may have are busy: the other four can only be queued for one.
  await until(async () => (await sandbox.stats()).workers[0]!.inflight === 6)
  t.equal(g.waiting.length, 2, 'two contexts, the rest queued')
  const [w] = (await sandbox.stats()).workers
  t.equal(w!.contexts, 2)
  t.equal(w!.isolates, 1, "both in the tenant's one isolate")
  const done = Promise.all(all)
  await until(() => (g.releaseAll(), false) || g.waiting.length === 0).catch(() => {})
  const loop = setInterval(() => g.releaseAll(), 10)
  const results = await done
  clearInterval(loop)
  t.same(
    results.map((r) => r.output),
    Array(6).fill('released'),
  )
})

t.test('idle isolates are evicted by count (LRU)', async (t) => {
  // An idle timeout no slow run of this test can reach, so only the count evicts here.
  const sandbox = await Sandbox.create({ workers: 1, maxIsolatesPerWorker: 3, idleMs: 10 * 60_000 })
  t.teardown(() => sandbox.close())
  await sandbox.load(plugin)
  for (let i = 0; i < 6; i++) await call(sandbox, plugin, 'echo', { tenant: `lru-${i}`, input: i })
  t.equal((await sandbox.stats()).workers[0]!.isolates, 3, 'LRU keeps three')
  // the most recent tenant is still warm
  t.equal((await call(sandbox, plugin, 'echo', { tenant: 'lru-5', input: 5 })).metrics.coldStart, false)
  t.equal((await call(sandbox, plugin, 'echo', { tenant: 'lru-0', input: 0 })).metrics.coldStart, true)
  t.equal((await sandbox.stats()).workers[0]!.isolates, 3, 'still three')
})

t.test('idle isolates are evicted after the idle timeout', async (t) => {
  const sandbox = await Sandbox.create({ workers: 1, idleMs: 300 })
  t.teardown(() => sandbox.close())
  await sandbox.load(plugin)
  for (let i = 0; i < 3; i++) await call(sandbox, plugin, 'echo', { tenant: `idle-${i}`, input: i })
  // the positive signal: the count reaches zero (however long the sweep takes on this machine)
  await until(async () => (await sandbox.stats()).workers[0]!.isolates === 0, 20_000)
  t.pass('all evicted after the idle timeout')
})

t.test('close fails what is in flight and refuses new work', async (t) => {
  const sandbox = await Sandbox.create({ workers: 1 })
  await sandbox.load(plugin)
  const g = gate()
  const held = call(sandbox, plugin, 'wait', { input: 1, onHostCall: g.handler })
  await until(() => g.waiting.length === 1)
  const heldErr = rejection(held)
  await sandbox.close()
  t.equal((await heldErr).code, SBX.CLOSED.code)
  t.equal((await rejection(call(sandbox, plugin, 'echo'))).code, SBX.CLOSED.code)
  t.equal((await rejection(sandbox.load(plugin))).code, SBX.CLOSED.code)
})

t.test('a bundle whose top level kills a worker fails to load and costs only the probation worker', async (t) => {
  const sandbox = await Sandbox.create({ workers: 2, quietWorkers: true })
  t.teardown(() => sandbox.close())
  await sandbox.load(plugin)
  // a trusted tenant (past probation) holding an invocation open meanwhile
  for (let i = 0; i < 4; i++) await call(sandbox, plugin, 'echo', { tenant: 'steady', input: i })
  const g = gate()
  const held = call(sandbox, plugin, 'wait', { tenant: 'steady', input: 'still here', onHostCall: g.handler })
  await until(() => g.waiting.length === 1)
  const killer = bodiesBundle('@evil/top-level-bomb', { a: 'return 1' })
  const code = `const m = new Map(); for (let i = 0; ; i++) m.set(i, { i });\n${killer.code}`
  const err = await rejection(
    sandbox.load({
      ...killer,
      code,
      sha256: (await import('node:crypto')).createHash('sha256').update(code).digest('hex'),
    }),
  )
  t.equal(err.code, SBX.BUNDLE_INVALID.code)
  g.releaseAll('survived')
  t.equal((await held).output, 'survived')
  // V8 either stops the isolate at its memory limit (the worker lives) or aborts the probation
  // worker's process (it is replaced): at most that one worker is lost, never the steady one.
  await until(async () => (await sandbox.stats()).workers.length === 2, 20_000)
  t.ok((await sandbox.stats()).restarts <= 1, 'at most the probation worker was replaced')
})

t.test('idle isolates are evicted to keep a worker under its heap budget', async (t) => {
  const sandbox = await Sandbox.create({ workers: 1, isolateHeapBudgetMb: 8 })
  t.teardown(() => sandbox.close())
  await sandbox.load(plugin)
  for (let i = 0; i < 12; i++) await call(sandbox, plugin, 'echo', { tenant: `budget-${i}`, input: i })
  const [w] = (await sandbox.stats({ refresh: true })).workers
  t.ok(w!.isolates < 12, `${w!.isolates} isolates kept`)
  t.ok(
    w!.isolateHeapBytes <= 8 * 1024 * 1024 + 4 * 1024 * 1024,
    `${Math.round(w!.isolateHeapBytes / 1048576)} MB of isolate heap`,
  )
})
