// A tenant's plugins share one isolate, each in a V8 context of its own (ADR 0080). Attacked
// here: what one plugin does to its globals and builtins never reaches another plugin of the same
// tenant; a plugin that overruns its CPU limit costs only its own context; one that exhausts the
// memory limit costs its tenant's isolate (the tenant's invocations in flight there fail with
// SBX_ERR_MEMORY) and never another tenant's; CPU time is counted per invocation, not per isolate.
// One sandbox with one worker for the whole file.
import t from 'tap'
import { SBX, Sandbox } from '../src/index.js'
import { bodiesBundle } from './fixtures/bundles.js'
import { call, gate, rejection, until } from './fixtures/harness.js'

const alpha = bodiesBundle('@acme/alpha', {
  poison: `
    globalThis.secret = 'alpha-secret'
    Object.prototype.polluted = 'by alpha'
    Array.prototype.includes = () => true
    JSON.parse = () => 'forged'
    globalThis.console = { log() { throw new Error('hijacked') } }
    return 'poisoned'`,
  count: `globalThis.count = (globalThis.count ?? 0) + 1; return globalThis.count`,
  spin: `for (;;) {}`,
  // ~800 KB of heap per step: the heap limit comes long before the CPU limit, even on a loaded machine
  bomb: `const a = []; for (;;) a.push(new Array(1e5).fill(a.length))`,
  wait: `return await host.call('wait', input)`,
})
const beta = bodiesBundle('@acme/beta', {
  look: `
    console.log('beta logs through its own console')
    return {
      secret: typeof globalThis.secret,
      polluted: ({}).polluted === undefined,
      includes: [1].includes(2),
      parse: JSON.parse('{"a":1}'),
      reach: [typeof require, typeof process, typeof globalThis.alpha, typeof globalThis.trellisBootstrap],
    }`,
  count: `globalThis.count = (globalThis.count ?? 0) + 1; return globalThis.count`,
  wait: `return await host.call('wait', input)`,
  // a fixed amount of work (not of wall time, which a loaded machine stretches)
  burn: `let x = 0; for (let i = 0; i < input; i++) x = (x + i) % 1e9; return x >= 0 ? 'burnt' : ''`,
})

const sandbox = await Sandbox.create({ workers: 1, quietWorkers: true, idleMs: 10 * 60_000 })
t.teardown(() => sandbox.close())
await sandbox.load(alpha)
await sandbox.load(beta)
const worker = async () => (await sandbox.stats()).workers[0]!

t.test("a tenant's plugins share one isolate, each in its own context; tenants never share", async (t) => {
  const before = await worker()
  t.equal((await call(sandbox, alpha, 'count', { tenant: 'acme' })).output, 1)
  t.equal((await call(sandbox, beta, 'count', { tenant: 'acme' })).output, 1)
  const one = await worker()
  t.equal(one.isolates - before.isolates, 1, 'one isolate for the tenant')
  t.equal(one.contexts - before.contexts, 2, 'a context per plugin')
  // module state is per plugin: each counts on from its own value
  t.equal((await call(sandbox, alpha, 'count', { tenant: 'acme' })).output, 2)
  t.equal((await call(sandbox, beta, 'count', { tenant: 'acme' })).output, 2)
  t.equal((await call(sandbox, alpha, 'count', { tenant: 'globex' })).output, 1, 'another tenant starts afresh')
  t.equal((await worker()).isolates - before.isolates, 2, 'another tenant, another isolate')
})

t.test("one plugin cannot reach or change another plugin's globals or builtins", async (t) => {
  t.equal((await call(sandbox, alpha, 'poison', { tenant: 'acme' })).output, 'poisoned')
  const res = await call(sandbox, beta, 'look', { tenant: 'acme' })
  t.same(res.output, {
    secret: 'undefined',
    polluted: true,
    includes: false,
    parse: { a: 1 },
    reach: ['undefined', 'undefined', 'undefined', 'undefined'],
  })
  t.same(
    res.logs.map((l) => l.message),
    ['beta logs through its own console'],
  )
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'host Object.prototype untouched')
})

t.test('a plugin over its CPU limit costs its own context only', async (t) => {
  const g = gate()
  const waiting = call(sandbox, beta, 'wait', { tenant: 'acme', input: 'kept', onHostCall: g.handler })
  await until(() => g.waiting.length === 1)
  const err = await rejection(call(sandbox, alpha, 'spin', { tenant: 'acme', limits: { cpuMs: 50 } }))
  t.equal(err.code, SBX.TIMEOUT.code)
  g.releaseAll('kept')
  t.equal((await waiting).output, 'kept', "the sibling's invocation in flight went on")
  t.equal((await call(sandbox, beta, 'count', { tenant: 'acme' })).output, 3, "the sibling's state survived")
  const again = await call(sandbox, alpha, 'count', { tenant: 'acme' })
  t.equal(again.output, 1, "the spinner's context was replaced")
  t.equal(again.metrics.coldStart, true)
})

t.test("CPU time is the invocation's own, not its isolate's", async (t) => {
  const g = gate()
  const waiting = call(sandbox, alpha, 'wait', { tenant: 'acme', input: 'idle', onHostCall: g.handler })
  await until(() => g.waiting.length === 1)
  // the sibling burns tens of ms of the same isolate's CPU while the first awaits
  const burnt = await call(sandbox, beta, 'burn', { tenant: 'acme', input: 5_000_000 })
  t.equal(burnt.output, 'burnt')
  g.releaseAll('idle')
  const res = await waiting
  t.equal(res.output, 'idle')
  // (relative to the sibling's measured burn: on a busy machine the isolate's clock also counts
  // V8's own background work, so no fixed figure holds)
  t.ok(
    res.metrics.cpuMs < burnt.metrics.cpuMs,
    `the awaiting invocation used ${res.metrics.cpuMs} ms of CPU, the sibling ${burnt.metrics.cpuMs} ms`,
  )
})

t.test("a memory bomb costs its tenant's isolate, never another tenant's", async (t) => {
  // (a memory limit is fixed when an isolate is made: plugins with the same limit share one)
  const limits = { memoryMb: 16 }
  const g = gate()
  const sibling = call(sandbox, beta, 'wait', { tenant: 'acme', input: 'sibling', onHostCall: g.handler, limits })
  const stranger = call(sandbox, beta, 'wait', { tenant: 'globex', input: 'stranger', onHostCall: g.handler, limits })
  await until(() => g.waiting.length === 2)
  const siblingErr = rejection(sibling)
  const err = await rejection(
    call(sandbox, alpha, 'bomb', { tenant: 'acme', limits: { ...limits, cpuMs: 10_000, wallMs: 20_000 } }),
  )
  t.equal(err.code, SBX.MEMORY.code)
  t.equal((await siblingErr).code, SBX.MEMORY.code, "the tenant's other invocation in its isolate failed with it")
  g.releaseAll('unaffected')
  t.equal((await stranger).output, 'unaffected', "another tenant's invocation went on")
  const kept = await call(sandbox, beta, 'count', { tenant: 'globex', limits })
  t.equal(kept.metrics.coldStart, false, "another tenant's isolate and context kept")
  const fresh = await call(sandbox, beta, 'count', { tenant: 'acme', limits })
  t.equal(fresh.output, 1, 'the tenant starts again in a new isolate')
  t.equal(fresh.metrics.coldStart, true)
  t.equal((await call(sandbox, beta, 'count', { tenant: 'acme' })).output, 4, 'its isolate with another limit lived on')
})
