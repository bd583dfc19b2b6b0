// Entry of a sandbox worker process (forked by the parent with --no-node-snapshot). Plain ESM
// rather than TypeScript so production workers need no loader. It holds compiled bundles and
// warm isolates, and talks to the parent only through the IPC channel.
import ivm from 'isolated-vm'
import { IsolatePool } from './isolate-pool.mjs'
import { Invocation } from './invocation.mjs'
import { CpuWatchdog } from './cpu-watchdog.mjs'
import { lazySourceMap } from './stack-mapper.mjs'
import { TenantIsolate } from './tenant-isolate.mjs'

// Only the parent starts a worker (with its config as the argument); anything else running
// this file — a test runner globbing the folder, a curious operator — gets an immediate exit.
if (process.argv[2] === undefined || typeof process.send !== 'function') process.exit(0)
const config = JSON.parse(process.argv[2])

const worker = {
  pool: new IsolatePool({
    maxIsolates: config.maxIsolates ?? 1000,
    maxIsolatesPerKey: config.maxIsolatesPerKey ?? 4,
    idleMs: config.idleMs ?? 5 * 60_000,
    heapBudgetBytes: (config.isolateHeapBudgetMb ?? 1024) * 1024 * 1024,
  }),
  /** bundle key → Promise of the compiled bundle (so invocations can wait for a load in flight). */
  bundles: new Map(),
  inflight: new Map(),
  /** Keys whose plugin code ran long on the event loop once; they run on pool threads (see Invocation.enterSync). */
  slowKeys: new Map(),
  syncSliceMs: config.syncSliceMs ?? 10,
  syncMaxCpuMs: config.syncMaxCpuMs ?? 1800,
  isSlow(key) {
    const until = this.slowKeys.get(key)
    if (until === undefined) return false
    if (until > Date.now()) return true
    this.slowKeys.delete(key)
    return false
  },
  markSlow(key) {
    this.slowKeys.delete(key)
    if (this.slowKeys.size >= 100_000) this.slowKeys.delete(this.slowKeys.keys().next().value)
    this.slowKeys.set(key, Date.now() + 30 * 60_000)
  },
  watchdog: new CpuWatchdog({ graceMs: config.cpuGraceMs ?? 250 }),
  send(msg) {
    if (process.connected) process.send(msg)
  },
}

process.on('message', (msg) => {
  switch (msg?.t) {
    case 'inv': {
      const inv = new Invocation(worker, msg)
      worker.inflight.set(msg.rid, inv)
      inv.start().catch((err) => {
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
    case 'load':
      load(msg)
      break
    case 'unload':
      worker.bundles.delete(msg.key)
      worker.pool.dropWhere((iso) => iso.bundle.key === msg.key)
      break
    case 'stats':
      worker.send({ t: 'stats', rid: msg.rid, stats: stats(msg.refresh) })
      break
    case 'shutdown':
      worker.pool.disposeAll()
      process.exit(0)
  }
})

function load(msg) {
  const { rid, bundle: b, limits, evaluate } = msg
  const compiled = compileBundle(b, limits, evaluate)
  worker.bundles.set(b.key, compiled)
  compiled.then(
    (bundle) => worker.send({ t: 'loaded', rid, entries: bundle.entries }),
    (err) => {
      worker.bundles.delete(b.key)
      worker.send({
        t: 'loadFailed',
        rid,
        error: {
          code: 'SBX_ERR_BUNDLE_INVALID',
          details: {
            id: b.id,
            version: b.version,
            reason: err.details?.reason ?? err.details?.message ?? err.code ?? String(err.message),
          },
        },
      })
    },
  )
}

async function compileBundle(b, limits, evaluate) {
  const bundle = {
    key: b.key,
    id: b.id,
    version: b.version,
    filename: `bundle:${b.id}@${b.version}`,
    // The SDK emits a CommonJS-shaped script; the wrapper sits on its own line so plugin
    // line numbers shift by exactly one.
    code: `(function (module, exports) {\n${b.code}\n})`,
    lineOffset: 1,
    cachedData: undefined,
    sourceMap: lazySourceMap(b.sourceMap),
    entries: {},
  }
  // Compile once to produce V8's code cache; every tenant's isolate then starts from it
  // instead of parsing and compiling the bundle again.
  const compiler = new ivm.Isolate({ memoryLimit: Math.max(limits.memoryMb, 32) })
  try {
    const script = await compiler.compileScript(bundle.code, { filename: bundle.filename, produceCachedData: true })
    bundle.cachedData = script.cachedData
  } catch (err) {
    throw Object.assign(new Error('compile'), {
      details: { reason: `does not compile: ${String(err?.message ?? err).slice(0, 500)}` },
    })
  } finally {
    compiler.dispose()
  }
  // Evaluate it once, alone, to learn its entries and prove it loads (only where the parent
  // asks: the top level is untrusted code, and one worker's word is enough).
  if (!evaluate) return bundle
  const probe = new TenantIsolate('probe', bundle, limits.memoryMb)
  try {
    await probe.init(limits.cpuMs, worker.watchdog)
  } catch (err) {
    const reason =
      err.code === 'SBX_ERR_TIMEOUT'
        ? 'evaluation exceeded the time limit'
        : err.code === 'SBX_ERR_MEMORY'
          ? 'evaluation exceeded the memory limit'
          : (err.details?.reason ?? err.details?.message ?? 'evaluation failed')
    throw Object.assign(new Error('load'), { details: { reason } })
  } finally {
    probe.dispose()
  }
  bundle.entries = probe.entries
  return bundle
}

function stats(refresh) {
  for (const list of worker.pool.byKey.values()) {
    for (const iso of list) {
      if (refresh && !iso.busy && !iso.disposed) {
        try {
          const s = iso.isolate.getHeapStatisticsSync()
          worker.pool.setHeap(iso, s.total_heap_size + s.externally_allocated_size)
        } catch {
          /* disposed meanwhile */
        }
      }
    }
  }
  const heap = worker.pool.heapBytes()
  return {
    pid: process.pid,
    rssBytes: process.memoryUsage().rss,
    isolates: worker.pool.count,
    isolateHeapBytes: heap,
    inflight: worker.inflight.size,
    bundles: worker.bundles.size,
    externalCopyBytes: ivm.ExternalCopy.totalExternalSize,
  }
}

setInterval(() => worker.pool.sweep(), Math.min(config.idleMs ?? 60_000, 10_000)).unref()
// The parent gone means nobody will ever read our answers.
process.on('disconnect', () => process.exit(0))
worker.send({ t: 'ready', pid: process.pid })
