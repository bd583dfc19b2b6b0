// The parent's handle on one sandbox worker process.
import { fork, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { FromWorker, ToWorker, WorkerConfig } from './protocol.js'

const WORKER_ENTRY = fileURLToPath(new URL('./worker/worker-main.mjs', import.meta.url))
const PAGE_SIZE = 4096
// Written by the worker's CPU watchdog (worker/cpu-watchdog.mjs) just before it kills the process.
const OVERRUN = /trellis-sandbox: plugin code overran its CPU limit, rid=(\d+) limit=(cpu|wall)/

export class WorkerProcess {
  readonly child: ChildProcess
  readonly pid: number
  readonly startedAt = Date.now()
  /** Request ids of the invocations this worker holds. */
  readonly inflight = new Set<number>()
  /** How many of those belong to keys on probation. */
  untrusted = 0
  /** Bundle keys already sent to this worker. */
  readonly bundles = new Set<string>()
  dead = false
  deathReason = ''
  /** V8 reported a fatal out-of-memory: isolated-vm's heap limit does not catch every shape of bomb. */
  sawOutOfMemory = false
  /** Request id of the invocation whose code overran its CPU limit and made the worker end itself (0: load-time code). */
  overranRid: number | undefined
  /** Which limit it overran: the CPU limit, or the invocation's deadline during a synchronous run. */
  overranLimit: 'cpu' | 'wall' = 'cpu'
  /** Stopped taking new work (its memory passed the recycle ceiling); ends once idle. */
  draining = false
  /** When its memory was last found over the recycle ceiling and its isolate heaps counted. */
  recycleCheckedAt: number | undefined
  /** Serves cordoned tenants only. */
  cordon = false
  /** Sum of the memory limits of the invocations in flight here, in MB. */
  committedMb = 0
  /** Killed by the parent for exceeding its process memory budget. */
  exhausted = false
  /** Killed by the parent for missing the deadline of an invocation of this tenant. */
  hungTenant: string | undefined

  constructor(
    readonly slot: number,
    config: WorkerConfig,
    execArgv: string[],
    onMessage: (w: WorkerProcess, msg: FromWorker) => void,
    onExit: (w: WorkerProcess) => void,
    quietStderr = false,
  ) {
    this.child = fork(WORKER_ENTRY, [JSON.stringify(config)], {
      execArgv: ['--no-node-snapshot', ...execArgv],
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      serialization: 'json',
    })
    this.pid = this.child.pid ?? -1
    this.child.on('message', (msg) => onMessage(this, msg as FromWorker))
    // Watched for V8's out-of-memory report (to tell a memory bomb from other crashes), then
    // passed on: it is the operator's only trace of why a worker died.
    this.child.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1')
      const overran = OVERRUN.exec(text)
      if (overran && this.overranRid === undefined) {
        this.overranRid = Number(overran[1])
        this.overranLimit = overran[2] === 'wall' ? 'wall' : 'cpu'
        this.kill(`plugin code overran its ${this.overranLimit === 'wall' ? 'deadline' : 'CPU limit'}`)
        return
      }
      if (!this.sawOutOfMemory && /Last few GCs|is_heap_oom|out of memory/i.test(text)) {
        this.sawOutOfMemory = true
        // V8 is about to abort (maybe dumping core): no need to wait for it.
        this.kill('ran out of memory')
      }
      if (!quietStderr) process.stderr.write(chunk)
    })
    // 'close' rather than 'exit': it comes after stderr is drained, so the OOM flag is final.
    this.child.on('close', (code, signal) => {
      if (!this.dead) this.deathReason = signal ? `exited on ${signal}` : `exited with code ${code}`
      this.dead = true
      onExit(this)
    })
    // A failed send means the channel is gone; 'close' follows and does the accounting.
    this.child.on('error', () => this.kill('IPC channel failed'))
  }

  send(msg: ToWorker): void {
    if (this.dead || !this.child.connected) return
    // No completion callback: it costs a write request per message, and a broken channel
    // surfaces as 'error' and then 'close' anyway.
    this.child.send(msg)
  }

  kill(reason: string): void {
    if (this.dead) return
    this.dead = true
    this.deathReason = reason
    this.child.kill('SIGKILL')
  }

  /** Resident set size read from /proc, so a worker stuck in native code is still measured. */
  rssBytes(): number | undefined {
    try {
      const statm = readFileSync(`/proc/${this.pid}/statm`, 'utf8')
      return Number(statm.split(' ')[1]) * PAGE_SIZE
    } catch {
      return undefined
    }
  }
}
