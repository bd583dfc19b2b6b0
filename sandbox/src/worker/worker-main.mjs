// @ts-check
// Entry of a sandbox worker process (forked by the parent with --no-node-snapshot). Plain ESM
// rather than TypeScript so production workers need no loader; type-checked through JSDoc, with
// the messages typed by ../protocol.ts, which the parent uses too. It holds compiled bundles
// and warm isolates, and talks to the parent only through the IPC channel.
import ivm from './isolated-vm.mjs'
import { availableParallelism } from 'node:os'
import { performance } from 'node:perf_hooks'
import { IsolatePool } from './isolate-pool.mjs'
import { Invocation } from './invocation.mjs'
import { CpuWatchdog } from './cpu-watchdog.mjs'
import { FairScheduler } from './fair-scheduler.mjs'
import { bundleFilename, lazySourceMap } from './stack-mapper.mjs'
import { TenantIsolate } from './tenant-isolate.mjs'
import { PluginContext } from './plugin-context.mjs'
import { SpareIsolates } from './spare-isolates.mjs'
import { EventLoopKeys } from './event-loop-keys.mjs'

/** @typedef {import('../protocol.js').WorkerConfig} WorkerConfig */
/** @typedef {import('../protocol.js').ToWorker} ToWorker */
/** @typedef {import('../protocol.js').FromWorker} FromWorker */
/** @typedef {import('../protocol.js').LoadMessage} LoadMessage */
/** @typedef {import('../protocol.js').WireBundle} WireBundle */
/** @typedef {import('../protocol.js').WireWorkerStats} WireWorkerStats */
/** @typedef {import('../limits.js').SandboxLimits} SandboxLimits */
/** @typedef {import('./worker-types.js').WorkerState} WorkerState */
/** @typedef {import('./worker-types.js').CompiledBundle} CompiledBundle */
/** @typedef {Error & { code?: string, details?: Record<string, unknown> }} LoadError */

// Only the parent starts a worker (with its config as the argument); anything else running
// this file — a test runner globbing the folder, a curious operator — gets an immediate exit.
if (process.argv[2] === undefined || typeof process.send !== 'function') process.exit(0)
/** How long the worker must have been quiet before it makes spare isolates (ms). */
const QUIET_MS = 5
/** @type {Partial<WorkerConfig> & { syncSliceMs?: number }} */
const config = JSON.parse(process.argv[2])
const send = /** @type {(msg: FromWorker) => boolean} */ (process.send).bind(process)

let loading = 0
/** When a message last came or went (performance.now()). */
let lastMessage = 0
// Fresh isolates for new tenants and probes, made while nothing is in flight nor was lately: a
// reply is often followed by the next request (a load's by the bundle's first invocation).
const spares = new SpareIsolates({
  busy: () => worker.inflight.size > 0 || loading > 0 || performance.now() - lastMessage < QUIET_MS,
})

const keys = new EventLoopKeys({ sliceMs: config.syncSliceMs ?? 10 })

/** @type {WorkerState} */
const worker = {
  pool: new IsolatePool({
    maxIsolates: config.maxIsolates ?? 1000,
    maxIsolatesPerKey: config.maxIsolatesPerKey ?? 4,
    idleMs: config.idleMs ?? 5 * 60_000,
    heapBudgetBytes: (config.isolateHeapBudgetMb ?? 1024) * 1024 * 1024,
    freshIsolate: (memoryMb, bundleKey) => spares.take(memoryMb, bundleKey),
  }),
  /** bundle key → Promise of the compiled bundle (so invocations can wait for a load in flight). */
  bundles: new Map(),
  compiled: new Map(),
  inflight: new Map(),
  scheduler: new FairScheduler({
    maxPerTenant: config.maxRunningPerTenant ?? Math.max(1, availableParallelism() - 1),
  }),
  syncSliceMs: config.syncSliceMs ?? 10,
  syncMaxCpuMs: config.syncMaxCpuMs ?? 1800,
  // Keys whose plugin code ran long on the event loop (twice) or failed run on pool threads (see
  // stretches.mjs and event-loop-keys.mjs).
  isSlow: (key) => keys.isSlow(key),
  markSlow: (key) => keys.markSlow(key),
  ranLong: (key, ownNs) => keys.ranLong(key, ownNs),
  timed: (key) => keys.timed(key),
  threadCpuNs: () => keys.threadCpuNs(),
  watchdog: new CpuWatchdog({ graceMs: config.cpuGraceMs ?? 250 }),
  send(msg) {
    lastMessage = performance.now()
    if (process.connected) send(msg)
  },
}

process.on('message', (/** @type {ToWorker} */ msg) => {
  lastMessage = performance.now()
  switch (msg?.t) {
    case 'inv': {
      const inv = new Invocation(worker, msg)
      worker.inflight.set(msg.rid, inv)
      inv.start()?.catch((err) => {
        if (!inv.done)
          inv.fail({
            code: 'SBX_ERR_WORKER_LOST',
            details: { reason: `worker error: ${String(err?.message ?? err).slice(0, 200)}` },
          })
      })
      break
    }
    case 'hcr':
      worker.inflight.get(msg.rid)?.onHostResult(msg)
      break
    case 'hcrb':
      worker.inflight.get(msg.rid)?.onHostResults(msg.results)
      break
    case 'load':
      load(msg)
      break
    case 'unload':
      worker.bundles.delete(msg.key)
      worker.compiled.delete(msg.key)
      worker.pool.dropWhere((iso) => iso.bundle.key === msg.key)
      spares.drop(msg.key)
      break
    case 'stats':
      worker.send({ t: 'stats', rid: msg.rid, stats: stats(msg.refresh) })
      break
    case 'shutdown':
      spares.disposeAll()
      worker.pool.disposeAll()
      process.exit(0)
  }
})

/** @param {LoadMessage} msg */
function load(msg) {
  const { rid, bundle: b, limits, evaluate } = msg
  const compiled = compileBundle(b, limits, evaluate)
  worker.bundles.set(b.key, compiled)
  loading++
  compiled.finally(() => loading--).catch(() => {})
  compiled.then(
    (bundle) => {
      if (worker.bundles.get(b.key) === compiled) worker.compiled.set(b.key, bundle)
      worker.send({ t: 'loaded', rid, entries: bundle.entries })
    },
    (/** @type {LoadError} */ err) => {
      if (worker.bundles.get(b.key) === compiled) worker.bundles.delete(b.key)
      worker.send({
        t: 'loadFailed',
        rid,
        error: {
          code: 'SBX_ERR_BUNDLE_INVALID',
          details: {
            id: b.id,
            version: b.version,
            reason: err.details?.reason ?? err.details?.message ?? err.code ?? String(err?.message),
          },
        },
      })
    },
  )
}

/**
 * @param {WireBundle} b
 * @param {SandboxLimits} limits
 * @param {boolean} evaluate
 * @returns {Promise<CompiledBundle>}
 */
async function compileBundle(b, limits, evaluate) {
  /** @type {CompiledBundle} */
  const bundle = {
    key: b.key,
    id: b.id,
    version: b.version,
    filename: bundleFilename(b.key),
    // The SDK emits a CommonJS-shaped script; the wrapper sits on its own line so plugin
    // line numbers shift by exactly one.
    code: `(function (module, exports) {\n${b.code}\n})`,
    lineOffset: 1,
    cachedData: undefined,
    sourceMap: lazySourceMap(b.sourceMap),
    entries: {},
  }
  // The first context that compiles the bundle here leaves V8's code cache on it; every later
  // context (any tenant's) starts from that cache instead of parsing and compiling it again.
  // Evaluate it once, alone, to learn its entries and prove it loads (only where the parent
  // asks: the top level is untrusted code, and one worker's word is enough).
  if (!evaluate) return bundle
  const host = new TenantIsolate('probe', limits.memoryMb, spares.take(limits.memoryMb))
  const probe = new PluginContext('probe', bundle, host)
  // On this thread under the rule a stretch follows (a CPU limit it may block the event loop for).
  const onThread =
    limits.cpuMs <= worker.syncMaxCpuMs
      ? { deadline: Date.now() + limits.wallMs, sliceMs: worker.syncSliceMs, ranLong: () => {} }
      : undefined
  try {
    await probe.init(limits.cpuMs, worker.watchdog, 0, onThread)
    // It ran to its end: nothing of it runs any more. Kept for the bundle's first new tenant here
    // (the first invocations of a new installation come to this, the probation worker).
    spares.keep(limits.memoryMb, probe.handOver())
  } catch (e) {
    const err = /** @type {LoadError} */ (e)
    const reason =
      err.code === 'SBX_ERR_TIMEOUT'
        ? 'evaluation exceeded the time limit'
        : err.code === 'SBX_ERR_MEMORY'
          ? 'evaluation exceeded the memory limit'
          : (err.details?.reason ?? err.details?.message ?? 'evaluation failed')
    throw Object.assign(new Error('load'), { details: { reason } })
  } finally {
    probe.dispose()
    host.dispose()
  }
  bundle.entries = probe.entries
  return bundle
}

/**
 * @param {boolean | undefined} refresh
 * @returns {WireWorkerStats}
 */
function stats(refresh) {
  for (const host of worker.pool.isolates.values()) {
    // (an isolate running plugin code on a pool thread would make this wait for it)
    if (refresh && !host.running && !host.disposed) {
      try {
        const s = host.isolate.getHeapStatisticsSync()
        worker.pool.setHeap(host, s.total_heap_size + s.externally_allocated_size)
      } catch {
        /* disposed meanwhile */
      }
    }
  }
  const heap = worker.pool.heapBytes()
  return {
    pid: process.pid,
    rssBytes: process.memoryUsage().rss,
    isolates: worker.pool.isolates.size,
    contexts: worker.pool.count,
    isolateHeapBytes: heap,
    inflight: worker.inflight.size,
    bundles: worker.bundles.size,
    externalCopyBytes: ivm.ExternalCopy.totalExternalSize,
  }
}

setInterval(
  () => {
    worker.pool.sweep()
    spares.drop()
  },
  Math.min(config.idleMs ?? 60_000, 10_000),
).unref()
// The parent gone means nobody will ever read our answers.
process.on('disconnect', () => process.exit(0))
worker.send({ t: 'ready', pid: process.pid })
