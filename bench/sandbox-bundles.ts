// `npm run bench -- sandbox-bundles`: the sandbox's own cost per call, cold starts and idle
// memory with the real first-party bundles (built from plugins/*), each next to a baseline
// measured in the same run:
// - per-call bookkeeping: a warm invocation of a small entry, less the two baselines below,
//   measured in alternating rounds, the difference of the rounds' medians; and the same
//   difference in CPU time per call (this process plus the worker, against this process plus
//   the echo child), which a loaded machine disturbs far less than wall time. Each baseline does
//   the work any process-isolated plugin call must do, and nothing the sandbox chose to add:
//   - IPC: the request the sandbox sends for this call (the same fields, the same limits), its
//     input and context serialised per call, over the same fork channel to a child started with
//     the worker's flags, which answers with a reply of the worker's shape (output text, metrics,
//     logs); the output is parsed back, as the sandbox parses it;
//   - isolate: the same bundle evaluated in a context of an isolate in this process, its entry
//     started from the input and context text and its result (an async entry's) collected as
//     JSON text by a second synchronous call — the cheapest way isolated-vm offers to run an
//     async function to its end from the calling thread;
// - cold start: a bundle not yet loaded (the orders plugin's, under a new version each time)
//   loaded and its `GET /orders` entry run for a new tenant, next to a warm call of the same entry
//   and to the first call of another new tenant (the bundle loaded by then);
// - idle memory per tenant: tenants with the ERP set (catalog, pricing, inventory, orders)
//   warm in one worker (one isolate per tenant, a context per plugin: ADR 0080), heap and RSS
//   measured before and after.
// `BENCH_WORKER_ARGS` passes node flags to the sandbox worker (e.g. `--cpu-prof`).
import { fork } from 'node:child_process'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ivm from 'isolated-vm'
import { buildPlugin } from '@trellis/plugin-sdk'
import { DEFAULT_LIMITS, Sandbox } from '../sandbox/src/index.js'
import type { HostCallHandler, InvocationContext, PluginBundle } from '../sandbox/src/index.js'
import { loadAverage, median, percentile } from './_harness.js'
import { pidsCpuMs } from './_proc-cpu.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const CALLS = Number(process.env.BENCH_CALLS ?? 2000)
const TENANTS = Number(process.env.BENCH_TENANTS ?? 100)
// Calls of each side before the first round (the three sides alternate). After 500, the first
// round still ran slow on every side — the bare IPC echo too (its CPU per call 1.5–2× later
// rounds'): both processes were still warming up, which is not what a warm call's p99 is about.
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3000)

const ECHO_CODE = `'use strict'
module.exports = { entries: { route: ['echo'] }, invoke: async (entry, input) => ({ ok: true, echo: input }) }
`
// `BENCH_MINIFY=1` builds the bundles minified (plugin-sdk's default is not to), to measure what that would save.
const MINIFY = process.env.BENCH_MINIFY === '1'
const WORKER_ARGS = (process.env.BENCH_WORKER_ARGS ?? '').split(' ').filter(Boolean)
const INPUT = {
  orderId: 'ord_123',
  lines: [
    { sku: 'A-1', qty: 2 },
    { sku: 'B-7', qty: 1 },
  ],
}

const bundleOf = (id: string, version: string, code: string, sourceMap?: string): PluginBundle => ({
  id,
  version,
  code,
  sha256: createHash('sha256').update(code).digest('hex'),
  ...(sourceMap ? { sourceMap } : {}),
})

function ctx(tenantId: string, n: number): InvocationContext {
  return {
    invocationId: `bench-${n}`,
    tenantId,
    installationId: `inst-${tenantId}`,
    caller: { kind: 'user', id: 'u1', permissions: [] },
    capabilities: ['data'],
  }
}

/** An empty page for every `data.find`: the entries below read and find nothing. */
const onHostCall: HostCallHandler = async (op) => (op === 'data.find' ? { items: [], nextCursor: null } : null)

/** Wall time of each call (µs), and the CPU time per call (µs) of this process and of `other` (a child's pid). */
async function samples(
  n: number,
  fn: (i: number) => Promise<unknown> | unknown,
  other?: number,
): Promise<{ wall: number[]; cpu: number }> {
  const wall: number[] = []
  const cpu0 = process.cpuUsage()
  const child0 = other === undefined ? 0 : pidsCpuMs([other])
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    await fn(i)
    wall.push((performance.now() - t0) * 1000)
  }
  const own = process.cpuUsage(cpu0)
  const child = other === undefined ? 0 : (pidsCpuMs([other]) - child0) * 1000
  return { wall, cpu: (own.user + own.system + child) / n }
}

const us = (x: number) => `${x.toFixed(1)} µs`
const ms = (x: number) => `${(x / 1000).toFixed(2)} ms`

/**
 * A child process started like a sandbox worker that answers each message with `reply` (the
 * worker's answer to such a call), under the request's id: the fork channel's bare round trip.
 */
function echoChild(reply: object) {
  const file = join(tmpdir(), `trellis-bench-echo-${process.pid}.cjs`)
  writeFileSync(
    file,
    "const reply = JSON.parse(process.argv[2]); process.on('message', (m) => { reply.rid = m.rid; process.send(reply) })\n",
  )
  const child = fork(file, [JSON.stringify(reply)], {
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    execArgv: ['--no-node-snapshot'],
    serialization: 'json',
  })
  let waiting: ((m: unknown) => void) | undefined
  child.on('message', (m) => waiting?.(m))
  return {
    call: (msg: object) =>
      new Promise((resolve) => {
        waiting = resolve
        child.send(msg)
      }),
    pid: child.pid!,
    close: () => child.kill(),
  }
}

async function built(name: string) {
  const dir = fileURLToPath(new URL(`../plugins/${name}`, import.meta.url))
  const b = await buildPlugin({ dir, write: false, minify: MINIFY })
  return { name, code: b.code, sourceMap: b.sourceMap }
}

/** `BENCH_PARTS` (comma-separated: bookkeeping, cold, memory) runs only those parts; all by default. */
const PARTS = new Set((process.env.BENCH_PARTS ?? 'bookkeeping,cold,memory').split(','))

export async function run(): Promise<void> {
  const erp = await Promise.all(['catalog', 'pricing', 'inventory', 'orders'].map(built))
  console.log(
    `bundles: ${erp.map((b) => `${b.name} ${(b.code.length / 1024).toFixed(0)} KiB`).join(', ')}; ${loadAverage()}`,
  )
  if (PARTS.has('bookkeeping')) await bookkeeping()
  if (PARTS.has('cold')) await coldStart(erp.find((b) => b.name === 'orders')!)
  if (PARTS.has('memory')) await idleMemory(erp)
}

type Built = Awaited<ReturnType<typeof built>>

async function bookkeeping(): Promise<void> {
  const echo = bundleOf('@bench/echo', '1.0.0', ECHO_CODE)
  const sandbox = await Sandbox.create({ workers: 1, workerExecArgv: WORKER_ARGS })
  const json = JSON.stringify(INPUT)
  const outputJson = JSON.stringify({ ok: true, echo: INPUT })
  // The worker's answer to such a call.
  const reply = {
    t: 'ok',
    rid: 0,
    output: outputJson,
    metrics: { cpuMs: 0.012, heapUsedBytes: 1234567, hostCalls: 0, outcome: 'ok', coldStart: false, workerPid: 1234 },
    logs: [],
  }
  const child = echoChild(reply)
  // The same bundle in a context of an isolate in this process: the entry started from text, its
  // result collected by a second call once the isolate's microtasks have run.
  const iso = new ivm.Isolate({ memoryLimit: 64 })
  const context = iso.createContextSync()
  context.evalSync(
    `const module = { exports: {} };
(function (module, exports) {\n${ECHO_CODE}\n})(module, module.exports);
let out;
globalThis.start = (input, ctx) => { out = undefined; module.exports.invoke({ kind: 'route', name: 'echo' }, JSON.parse(input), JSON.parse(ctx)).then((v) => { out = JSON.stringify(v) }) };
globalThis.take = () => out;`,
  )
  const start = context.global.getSync('start', { reference: true }) as ivm.Reference<
    (input: string, ctx: string) => void
  >
  const take = context.global.getSync('take', { reference: true }) as ivm.Reference<() => string>
  const ctxJson = JSON.stringify(ctx('t', 0))
  const isolateCall = () => {
    start.applySync(undefined, [json, ctxJson])
    return take.applySync(undefined, []) as string
  }
  try {
    await sandbox.load(echo)
    const invoke = (i: number) =>
      sandbox.invoke({
        bundle: echo,
        entry: { kind: 'route', name: 'echo' },
        input: INPUT,
        context: ctx('t', i),
        onHostCall,
      })
    // What the sandbox sends for such a call, serialised per call as the sandbox does.
    const ipcCall = (i: number) => {
      const c = ctx('t', i)
      return child.call({
        t: 'inv',
        rid: i,
        invocationId: c.invocationId,
        tenantId: c.tenantId,
        bundleKey: '@bench/echo@1.0.0',
        isoKey: JSON.stringify([c.tenantId, c.installationId, '@bench/echo@1.0.0', DEFAULT_LIMITS.memoryMb]),
        entry: { kind: 'route', name: 'echo' },
        input: JSON.stringify(INPUT),
        context: JSON.stringify(c),
        limits: DEFAULT_LIMITS,
        remainingMs: DEFAULT_LIMITS.wallMs,
      })
    }
    for (let i = 0; i < WARMUP; i++) {
      await invoke(i)
      await ipcCall(i)
      isolateCall()
    }
    if (isolateCall() !== outputJson) throw new Error('isolate call: wrong output')
    const workerPid = (await sandbox.stats()).workers[0]!.pid
    type Side = { wall: number[]; cpu: number }
    const rounds: Array<{ warm: Side; ipc: Side; isolate: Side }> = []
    for (let r = 0; r < ROUNDS; r++) {
      const sides = {
        // every call of both sides is checked: the echo must come back whole
        warm: () =>
          samples(
            CALLS,
            async (i) => {
              const res = await invoke(i)
              if ((res.output as { echo?: { orderId?: string } }).echo?.orderId !== INPUT.orderId)
                throw new Error('warm invoke: wrong output')
            },
            workerPid,
          ),
        ipc: () =>
          samples(
            CALLS,
            async (i) => {
              const answer = (await ipcCall(i)) as { rid?: number; output?: string }
              const out = JSON.parse(answer.output ?? '') as { echo?: { orderId?: string } }
              if (answer.rid !== i || out.echo?.orderId !== INPUT.orderId) throw new Error('IPC: wrong answer')
            },
            child.pid,
          ),
        isolate: () =>
          samples(CALLS, () => {
            if (isolateCall() !== outputJson) throw new Error('isolate call: wrong output')
          }),
      }
      const order = r % 2 === 0 ? (['warm', 'ipc', 'isolate'] as const) : (['isolate', 'ipc', 'warm'] as const)
      const round = {} as { warm: Side; ipc: Side; isolate: Side }
      for (const side of order) round[side] = await sides[side]()
      rounds.push(round)
    }
    const per = rounds.map((r) => median(r.warm.wall) - median(r.ipc.wall) - median(r.isolate.wall))
    const perCpu = rounds.map((r) => r.warm.cpu - r.ipc.cpu - r.isolate.cpu)
    const p99s = rounds.map((r) => percentile(r.warm.wall, 99))
    for (const [i, r] of rounds.entries())
      console.log(
        `round ${i + 1}: warm invoke p50 ${us(median(r.warm.wall))} p99 ${us(percentile(r.warm.wall, 99))} CPU ${us(r.warm.cpu)}/call; IPC round trip p50 ${us(median(r.ipc.wall))} CPU ${us(r.ipc.cpu)}/call; isolate call p50 ${us(median(r.isolate.wall))} CPU ${us(r.isolate.cpu)}/call → bookkeeping ${us(per[i]!)} wall, ${us(perCpu[i]!)} CPU`,
      )
    console.log(
      `per-call bookkeeping beyond IPC + isolate: median ${us(median(per))} wall (rounds ${per.map((x) => x.toFixed(1)).join(', ')} µs), ${us(median(perCpu))} CPU of both processes (rounds ${perCpu.map((x) => x.toFixed(1)).join(', ')} µs) [target ≤ 20 µs]; warm p99 by round ${p99s.map(us).join(', ')} [target ≤ 1 ms in every run]; ${loadAverage()}`,
    )
  } finally {
    child.close()
    iso.dispose()
    await sandbox.close()
  }
}

/**
 * A bundle not yet loaded (a new version each time) loaded and run for a new tenant. Paced: each
 * sample starts once the worker has been idle for `BENCH_COLD_GAP_MS` (50 by default), as a real
 * load finds it (loads are rare: an install, an upgrade, a kernel start) — the previous sample's
 * unload has been carried out and the worker has made its spare isolates. Back to back: each
 * sample right after the previous one's unload, so the worker is still busy with it.
 */
async function coldStart(orders: Built): Promise<void> {
  const cold = await Sandbox.create({ workers: 1, workerExecArgv: WORKER_ARGS })
  try {
    const N = Number(process.env.BENCH_COLD ?? 40)
    const gap = Number(process.env.BENCH_COLD_GAP_MS ?? 50)
    await coldSamples(cold, orders, N, gap, 0, `paced, ${gap} ms idle before each`)
    await coldSamples(cold, orders, N, 0, N + 3, 'back to back')
  } finally {
    await cold.close()
  }
}

async function coldSamples(cold: Sandbox, orders: Built, N: number, gapMs: number, from: number, label: string) {
  const entry = { kind: 'route' as const, name: 'GET /orders' }
  const input = { method: 'GET', path: '/orders', params: {}, query: {}, headers: {}, body: null }
  const coldTimes: number[] = []
  const loadTimes: number[] = []
  const warmTimes: number[] = []
  const nextTimes: number[] = []
  for (let i = from; i < from + N + 3; i++) {
    if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs))
    // A version never loaded before: the bundle is sent, compiled and evaluated, then run for a new tenant.
    const b = bundleOf('@trellis/orders', `9.0.${i}`, orders.code, orders.sourceMap)
    const t0 = performance.now()
    await cold.load(b)
    const tl = performance.now()
    const first = await cold.invoke({ bundle: b, entry, input, context: ctx(`cold-${i}`, i), onHostCall })
    const t1 = performance.now()
    if (!first.metrics.coldStart) throw new Error('expected a cold start')
    const again = await cold.invoke({ bundle: b, entry, input, context: ctx(`cold-${i}`, i + 1), onHostCall })
    const t2 = performance.now()
    if (again.metrics.coldStart) throw new Error('expected a warm call')
    // Another new tenant, the bundle loaded: its own isolate and context, the bundle from V8's code cache.
    const next = await cold.invoke({ bundle: b, entry, input, context: ctx(`cold-${i}-next`, i + 2), onHostCall })
    const t3 = performance.now()
    if (!next.metrics.coldStart) throw new Error('expected a cold start')
    if (i >= from + 3) {
      coldTimes.push((t1 - t0) * 1000)
      loadTimes.push((tl - t0) * 1000)
      warmTimes.push((t2 - t1) * 1000)
      nextTimes.push((t3 - t2) * 1000)
    }
    await cold.unload(b)
  }
  console.log(
    `cold start, orders bundle not yet loaded (${N}, ${label}): p50 ${ms(median(coldTimes))}, p99 ${ms(percentile(coldTimes, 99))} (of which load() p50 ${ms(median(loadTimes))}); the next call warm p50 ${ms(median(warmTimes))}; then another new tenant's first call p50 ${ms(median(nextTimes))} [target p50 ≤ 10 ms]; ${loadAverage()}`,
  )
}

/** Tenants with the ERP set warm in one worker. */
async function idleMemory(erp: Built[]): Promise<void> {
  const mem = await Sandbox.create({
    workers: 1,
    maxIsolatesPerWorker: 10_000,
    isolateHeapBudgetMb: 8192,
    workerExecArgv: WORKER_ARGS,
  })
  try {
    const bundles = erp.map((b) => bundleOf(`@trellis/${b.name}`, '1.0.0', b.code, b.sourceMap))
    // Each bundle's first GET route (they read a collection and find nothing here).
    const gets: string[] = []
    for (const b of bundles) gets.push((await mem.load(b)).entries.route!.find((r) => r.startsWith('GET '))!)
    const warmUp = async (tenant: string, i: number) => {
      for (const [k, b] of bundles.entries()) {
        const path = gets[k]!.slice(4)
        await mem.invoke({
          bundle: b,
          entry: { kind: 'route', name: gets[k]! },
          input: { method: 'GET', path, params: {}, query: {}, headers: {}, body: null },
          context: ctx(tenant, i),
          onHostCall,
        })
      }
    }
    for (let i = 0; i < 5; i++) await warmUp(`mem-warm-${i}`, i)
    const before = (await mem.stats({ refresh: true })).workers[0]!
    for (let i = 0; i < TENANTS; i++) await warmUp(`mem-${i}`, i)
    await new Promise((r) => setTimeout(r, 500))
    const after = (await mem.stats({ refresh: true })).workers[0]!
    const heapPer = (after.isolateHeapBytes - before.isolateHeapBytes) / TENANTS
    const rssPer = (after.rssBytes - before.rssBytes) / TENANTS
    const per = Math.max(heapPer, rssPer)
    console.log(
      `idle memory per tenant, ${bundles.length} ERP bundles warm (${TENANTS} tenants; ${after.isolates - before.isolates} isolates, ${after.contexts - before.contexts} contexts): heap ${(heapPer / 1024 ** 2).toFixed(2)} MiB, RSS ${(rssPer / 1024 ** 2).toFixed(2)} MiB → ${Math.floor(1024 ** 3 / per)} tenants per GiB, ${Math.floor(1e9 / per)} per GB (by the larger) [target ≥ 500 per GB]; ${loadAverage()}`,
    )
  } finally {
    await mem.close()
  }
}
