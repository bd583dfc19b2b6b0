// `npm run bench -- sandbox`: the sandbox's round trips, cold starts, throughput and memory,
// each next to baselines measured in the same run (a plain function call and a raw in-process
// isolated-vm call), so the ratios hold on any machine.
import { createHash } from 'node:crypto'
import { availableParallelism } from 'node:os'
import ivm from 'isolated-vm'
import { Sandbox } from '../sandbox/src/index.js'
import type { HostCallHandler, InvocationContext, PluginBundle } from '../sandbox/src/index.js'

const BUNDLE_CODE = `'use strict'
module.exports = {
  entries: { route: ['echo', 'threeCalls'] },
  invoke: async (entry, input, ctx, host) => {
    if (entry.name === 'echo') return { ok: true, echo: input }
    const a = await host.call('orders.get', { id: 1 })
    const [b, c] = await Promise.all([host.call('orders.get', { id: 2 }), host.call('orders.get', { id: 3 })])
    return { ok: true, totals: [a.total, b.total, c.total] }
  },
}
`
const bundle: PluginBundle = {
  id: '@bench/echo',
  version: '1.0.0',
  code: BUNDLE_CODE,
  sha256: createHash('sha256').update(BUNDLE_CODE).digest('hex'),
}
const INPUT = {
  orderId: 'ord_123',
  lines: [
    { sku: 'A-1', qty: 2 },
    { sku: 'B-7', qty: 1 },
  ],
}
const onHostCall: HostCallHandler = async (_op, args) => ({ id: (args as { id: number }).id, total: 42 })

function ctx(tenantId: string, n: number): InvocationContext {
  return {
    invocationId: `bench-${n}`,
    tenantId,
    installationId: `inst-${tenantId}`,
    caller: { kind: 'user', id: 'u1', permissions: [] },
    capabilities: ['data'],
  }
}

interface Figures {
  p50: number
  p99: number
  mean: number
}

async function measure(n: number, warmup: number, fn: (i: number) => Promise<unknown> | unknown): Promise<Figures> {
  for (let i = 0; i < warmup; i++) await fn(i)
  const samples = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    await fn(i)
    samples[i] = (performance.now() - t0) * 1000
  }
  samples.sort()
  return {
    p50: samples[Math.floor(n * 0.5)]!,
    p99: samples[Math.floor(n * 0.99)]!,
    mean: samples.reduce((a, b) => a + b, 0) / n,
  }
}

const us = (x: number) => `${x.toFixed(1)} µs`
const row = (name: string, f: Figures, extra = '') =>
  console.log(`${name.padEnd(44)} p50 ${us(f.p50).padStart(11)}   p99 ${us(f.p99).padStart(11)}${extra}`)

// Fairness between tenants sharing one worker: a light tenant's sequential calls, alone and
// while another tenant keeps the worker busy with CPU-heavy handlers (off the worker's thread,
// as long runs go). Rounds alternate; every call of both tenants must succeed.
const FAIR_CODE = `'use strict'
module.exports = {
  entries: { route: ['echo', 'spin'] },
  invoke: async (entry, input) => {
    if (entry.name === 'echo') return { ok: true, echo: input }
    const end = Date.now() + input
    let n = 0
    while (Date.now() < end) n++
    return { ok: n > 0 }
  },
}
`
const fairBundle: PluginBundle = {
  id: '@bench/fair',
  version: '1.0.0',
  code: FAIR_CODE,
  sha256: createHash('sha256').update(FAIR_CODE).digest('hex'),
}

export async function runFairness(): Promise<void> {
  const HEAVY_IN_FLIGHT = 4
  const SPIN_MS = 50
  const LIGHT_CALLS = 200
  const ROUNDS = 3
  const sandbox = await Sandbox.create({ workers: 1 })
  try {
    await sandbox.load(fairBundle)
    let n = 0
    const invoke = async (tenant: string, name: string, input: unknown, cpuMs?: number) => {
      const r = await sandbox.invoke({
        bundle: fairBundle,
        entry: { kind: 'route', name },
        input,
        context: ctx(tenant, n++),
        onHostCall,
        ...(cpuMs ? { limits: { cpuMs } } : {}),
      })
      if ((r.output as { ok?: boolean })?.ok !== true) throw new Error(`${tenant} ${name}: unexpected output`)
    }
    // warm both tenants (isolates, and the heavy tenant's handlers recognised as long)
    for (let i = 0; i < 4; i++) await invoke('light', 'echo', i)
    await Promise.all(Array.from({ length: HEAVY_IN_FLIGHT }, () => invoke('heavy', 'spin', SPIN_MS, 5000)))
    const alone: number[] = []
    const loaded: number[] = []
    let heavyDone = 0
    let heavyMs = 0
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < LIGHT_CALLS; i++) {
        const t0 = performance.now()
        await invoke('light', 'echo', i)
        alone.push((performance.now() - t0) * 1000)
      }
      let stop = false
      const started = performance.now()
      const heavy = Array.from({ length: HEAVY_IN_FLIGHT }, async () => {
        while (!stop) {
          await invoke('heavy', 'spin', SPIN_MS, 5000)
          heavyDone++
        }
      })
      for (let i = 0; i < LIGHT_CALLS; i++) {
        const t0 = performance.now()
        await invoke('light', 'echo', i)
        loaded.push((performance.now() - t0) * 1000)
      }
      stop = true
      await Promise.all(heavy)
      heavyMs += performance.now() - started
    }
    const pct = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * q)]!
    const a = { p50: pct(alone, 0.5), p99: pct(alone, 0.99) }
    const l = { p50: pct(loaded, 0.5), p99: pct(loaded, 0.99) }
    console.log(`fairness, 1 worker, light tenant's sequential calls (${ROUNDS} alternating rounds of ${LIGHT_CALLS})`)
    row('  light tenant alone (baseline)', { ...a, mean: 0 })
    row(
      `  light beside ${HEAVY_IN_FLIGHT} heavy runs of ${SPIN_MS} ms in flight`,
      { ...l, mean: 0 },
      `   = ${(l.p50 / a.p50).toFixed(1)}× p50, ${(l.p99 / a.p99).toFixed(1)}× p99 alone; heavy ${(heavyDone / (heavyMs / 1000)).toFixed(1)} runs/s`,
    )
  } finally {
    await sandbox.close()
  }
}

export async function run(): Promise<void> {
  const cores = availableParallelism()
  console.log(`node ${process.version}, ${cores} cores, ${new Date().toISOString()}`)

  // --- baselines -----------------------------------------------------------------------
  const plain = async (x: unknown) => ({ ok: true, echo: x })
  const plainF = await measure(20_000, 2_000, () => plain(INPUT))

  const iso = new ivm.Isolate({ memoryLimit: 1024 })
  const context = iso.createContextSync()
  const fn = context.evalSync(
    `(function (json) { const input = JSON.parse(json); return JSON.stringify({ ok: true, echo: input }) })`,
    { reference: true },
  )
  const json = JSON.stringify(INPUT)
  const rawAsync = await measure(5_000, 500, () =>
    fn.apply(undefined, [json], { result: { copy: true }, timeout: 1000 }),
  )
  const rawSync = await measure(5_000, 500, () =>
    fn.applySync(undefined, [json], { result: { copy: true }, timeout: 1000 }),
  )

  // The alternative ADR 0001 weighed: one isolate per bundle shared by tenants, with a fresh
  // context per invocation (the bundle's top level re-run each time, from a compiled script).
  const script =
    iso.compileScriptSync(`var module = { exports: {} }; (function (module, exports) {\n${BUNDLE_CODE}\n})(module, module.exports);
globalThis.__call = (json) => JSON.stringify({ ok: true, echo: JSON.parse(json), entries: module.exports.entries })`)
  const freshContext = await measure(1_000, 100, () => {
    const c = iso.createContextSync()
    script.runSync(c)
    const r = c.global
      .getSync('__call', { reference: true })
      .applySync(undefined, [json], { result: { copy: true }, timeout: 1000 })
    c.release()
    return r
  })
  const keptContext = iso.createContextSync()
  script.runSync(keptContext)
  const kept = keptContext.global.getSync('__call', { reference: true })
  const warmContext = await measure(5_000, 500, () =>
    kept.applySync(undefined, [json], { result: { copy: true }, timeout: 1000 }),
  )
  iso.dispose()

  // --- the sandbox ---------------------------------------------------------------------
  const sandbox = await Sandbox.create({ maxIsolatesPerWorker: 5000, isolateHeapBudgetMb: 4096 })
  try {
    await sandbox.load(bundle)
    const call = (tenant: string, name: string, i: number) =>
      sandbox.invoke({ bundle, entry: { kind: 'route', name }, input: INPUT, context: ctx(tenant, i), onHostCall })

    const warm = await measure(5_000, 500, (i) => call('tenant-warm', 'echo', i))
    const hosted = await measure(3_000, 300, (i) => call('tenant-warm', 'threeCalls', i))
    let cold = 0
    const coldF = await measure(200, 0, async (i) => {
      const r = await call(`tenant-cold-${i}`, 'echo', i)
      if (r.metrics.coldStart) cold++
    })

    // Throughput: many warm tenants (past probation), enough concurrency to keep every worker busy.
    const tenants = Array.from({ length: 32 }, (_, i) => `tenant-tp-${i}`)
    for (const t of tenants) for (let i = 0; i < 4; i++) await call(t, 'echo', i)
    const concurrency = cores * 16
    const durationMs = 3000
    let done = 0
    const end = performance.now() + durationMs
    await Promise.all(
      Array.from({ length: concurrency }, async (_, k) => {
        for (let i = 0; performance.now() < end; i++) {
          await call(tenants[(k + i) % tenants.length]!, 'echo', i)
          done++
        }
      }),
    )
    const perSec = done / (durationMs / 1000)

    row('plain async function call (baseline)', plainF)
    row('raw isolated-vm apply, async (baseline)', rawAsync)
    row('raw isolated-vm applySync (baseline)', rawSync)
    row(
      'in-process: fresh context per invocation',
      freshContext,
      `   = ${(freshContext.p50 / warmContext.p50).toFixed(0)}× a kept context (ADR 0001)`,
    )
    row('in-process: kept context, warm', warmContext)
    row(
      'sandbox warm invoke (parent→worker→isolate)',
      warm,
      `   = ${(warm.p50 / rawAsync.p50).toFixed(1)}× raw apply, ${(warm.p50 / plainF.p50).toFixed(0)}× plain call   [target p50 ≤ 150 µs, p99 ≤ 1 ms]`,
    )
    row(
      'sandbox warm invoke with 3 host calls',
      hosted,
      `   = ${(hosted.p50 / warm.p50).toFixed(1)}× warm invoke   [target p50 ≤ 400 µs]`,
    )
    row(
      `cold start, new tenant (${cold}/200 cold)`,
      coldF,
      `   = ${(coldF.p50 / warm.p50).toFixed(1)}× warm invoke   [target p50 ≤ 10 ms]`,
    )
    console.log(
      `throughput, ${cores} workers, ${concurrency} in flight`.padEnd(44) +
        ` ${Math.round(perSec)} invocations/s = ${Math.round(perSec / cores)} per core; ${(1e6 / perSec / cores).toFixed(0)} µs of a core each = ${(1e6 / perSec / cores / rawAsync.p50).toFixed(1)}× raw apply`,
    )
  } finally {
    await sandbox.close()
  }

  await runFairness()

  // --- memory per idle isolate ---------------------------------------------------------
  const mem = await Sandbox.create({ workers: 1, maxIsolatesPerWorker: 5000, isolateHeapBudgetMb: 8192 })
  try {
    await mem.load(bundle)
    for (let i = 0; i < 10; i++)
      await mem.invoke({
        bundle,
        entry: { kind: 'route', name: 'echo' },
        input: INPUT,
        context: ctx(`mem-warm-${i}`, i),
        onHostCall,
      })
    const before = (await mem.stats({ refresh: true })).workers[0]!
    const K = 400
    for (let i = 0; i < K; i++)
      await mem.invoke({
        bundle,
        entry: { kind: 'route', name: 'echo' },
        input: INPUT,
        context: ctx(`mem-${i}`, i),
        onHostCall,
      })
    await new Promise((r) => setTimeout(r, 500))
    const after = (await mem.stats({ refresh: true })).workers[0]!
    const heapPer = (after.isolateHeapBytes - before.isolateHeapBytes) / K
    const rssPer = (after.rssBytes - before.rssBytes) / K
    const per = Math.max(heapPer, rssPer)
    const fit = Math.floor((2 * 1024 ** 3) / per)
    console.log(
      `memory per idle isolate (${K} tenants)`.padEnd(44) +
        ` heap ${(heapPer / 1024).toFixed(0)} KiB, rss ${(rssPer / 1024).toFixed(0)} KiB → ~${fit} tenants' isolates warm in 2 GiB`,
    )
  } finally {
    await mem.close()
  }
}
