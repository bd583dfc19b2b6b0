// CPU sharing between tenants inside one worker: a tenant saturating the worker with CPU-heavy
// handlers does not make another tenant wait behind its backlog. Asserted on the order in which
// invocations finish, never on how fast this machine is.
import t from 'tap'
import { Sandbox } from '../src/index.js'
import { bodiesBundle } from './fixtures/bundles.js'
import { call } from './fixtures/harness.js'

// Runs under 10 ms execute on the worker's main thread, one after another: without fair
// scheduling, in the order the messages arrived.
const HEAVY_MS = 3
const HEAVY_RUNS = 20

const plugin = bodiesBundle('@acme/fairness', {
  // Busy for `input` ms of the clock inside the isolate (CPU when the core is free).
  burn: 'const end = Date.now() + input; let n = 0; while (Date.now() < end) n++; return n > 0',
  echo: 'return input',
  // A host call between two stretches of work: each stretch takes its own turn.
  burnTwice:
    'const a = Date.now() + input; while (Date.now() < a) {} await host.call("pause", null); const b = Date.now() + input; while (Date.now() < b) {} return "done"',
})

for (const maxRunningPerTenant of [1, 2]) {
  t.test(`a light tenant is not queued behind a heavy tenant's backlog (${maxRunningPerTenant} at once)`, async (t) => {
    const sandbox = await Sandbox.create({ workers: 1, maxRunningPerTenant })
    t.teardown(() => sandbox.close())
    await sandbox.load(plugin)
    // Both tenants warm, so the light one's invocation waits for nothing but a run slot.
    await call(sandbox, plugin, 'burn', { tenant: 'heavy', input: HEAVY_MS })
    await call(sandbox, plugin, 'echo', { tenant: 'light', input: 'warm' })
    const finished: string[] = []
    const heavy = Array.from({ length: HEAVY_RUNS }, (_, i) =>
      call(sandbox, plugin, 'burn', { tenant: 'heavy', input: HEAVY_MS }).then(() => finished.push(`heavy-${i}`)),
    )
    // Sent after all of them: in arrival order it would finish last.
    const light = call(sandbox, plugin, 'echo', { tenant: 'light', input: 'hi' }).then((r) => {
      finished.push('light')
      return r
    })
    t.equal((await light).output, 'hi')
    await Promise.all(heavy)
    const before = finished.indexOf('light')
    // In arrival order it would finish after all 20. Served by turn, it waits for the runs in
    // progress when its message reached the worker, and those granted before it — a handful,
    // more when the machine is loaded and the heavy messages reached the worker in several
    // reads — but never for the heavy tenant's backlog: fewer than half of it finish first.
    t.ok(before < HEAVY_RUNS / 2, `light finished after ${before} of ${HEAVY_RUNS} heavy runs: ${finished.join(' ')}`)
    t.equal(finished.length, HEAVY_RUNS + 1, 'the heavy tenant was served too')
  })
}

t.test("a tenant's runs beyond its share wait for its own, not beside them; others run at once", async (t) => {
  const sandbox = await Sandbox.create({ workers: 1, maxRunningPerTenant: 1 })
  t.teardown(() => sandbox.close())
  await sandbox.load(plugin)
  // A CPU limit above what the worker runs on its own thread: these run on isolated-vm's threads,
  // where without a share two of one tenant's runs would spin side by side.
  const offThread = { cpuMs: 5000 }
  const warm = (tenant: string) => call(sandbox, plugin, 'burn', { tenant, input: 1, limits: offThread })
  await Promise.all([warm('heavy'), warm('heavy'), warm('light')])
  const finished: string[] = []
  const run = (label: string, tenant: string, ms: number) =>
    call(sandbox, plugin, 'burn', { tenant, input: ms, limits: offThread }).then(() => finished.push(label))
  const long = run('heavy-long', 'heavy', 400)
  const short = run('heavy-short', 'heavy', 1)
  const light = run('light', 'light', 1)
  await Promise.all([long, short, light])
  t.ok(
    finished.indexOf('heavy-short') > finished.indexOf('heavy-long'),
    `the heavy tenant's second run waited for its first: ${finished.join(' ')}`,
  )
  t.ok(finished.indexOf('light') < finished.indexOf('heavy-long'), 'the light tenant ran beside it')
})

t.test('an invocation awaiting a host call holds no run slot', async (t) => {
  const sandbox = await Sandbox.create({ workers: 1, maxRunningPerTenant: 1 })
  t.teardown(() => sandbox.close())
  await sandbox.load(plugin)
  let release: (v: unknown) => void = () => {}
  const paused = new Promise((resolve) => (release = resolve))
  let called: () => void = () => {}
  const calling = new Promise<void>((resolve) => (called = resolve))
  const held = call(sandbox, plugin, 'burnTwice', {
    tenant: 'waiting',
    input: 5,
    onHostCall: () => (called(), paused),
  })
  await calling
  // while its host call is open, the tenant's only slot serves its other invocations
  const others = await Promise.all(
    Array.from({ length: 5 }, (_, i) => call(sandbox, plugin, 'echo', { tenant: 'waiting', input: i })),
  )
  t.same(
    others.map((r) => r.output),
    [0, 1, 2, 3, 4],
  )
  release('go')
  t.equal((await held).output, 'done')
})
