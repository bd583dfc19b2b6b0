// The parent's handle on one sandbox worker process.
import { fork, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { FromWorker, ToWorker } from './protocol.js'

const WORKER_ENTRY = fileURLToPath(new URL('./worker/worker-main.mjs', import.meta.url))
const PAGE_SIZE = 4096

export interface WorkerConfig {
  maxIsolates: number
  maxIsolatesPerKey: number
  idleMs: number
  isolateHeapBudgetMb: number
}

export class WorkerProcess {
  readonly child: ChildProcess
  readonly pid: number
  readonly startedAt = Date.now()
  /** Request ids of the invocations this worker holds. */
  readonly inflight = new Set<number>()
  /** Bundle keys already sent to this worker. */
  readonly bundles = new Set<string>()
  dead = false
  deathReason = ''

  constructor(
    readonly slot: number,
    config: WorkerConfig,
    execArgv: string[],
    onMessage: (w: WorkerProcess, msg: FromWorker) => void,
    onExit: (w: WorkerProcess) => void,
  ) {
    this.child = fork(WORKER_ENTRY, [JSON.stringify(config)], {
      execArgv: ['--no-node-snapshot', ...execArgv],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    })
    this.pid = this.child.pid ?? -1
    this.child.on('message', (msg) => onMessage(this, msg as FromWorker))
    this.child.on('exit', (code, signal) => {
      if (!this.dead) this.deathReason = signal ? `exited on ${signal}` : `exited with code ${code}`
      this.dead = true
      onExit(this)
    })
    // A failed send means the channel is gone; 'exit' follows and does the accounting.
    this.child.on('error', () => {})
  }

  send(msg: ToWorker): void {
    if (this.dead || !this.child.connected) return
    this.child.send(msg, (err) => {
      if (err && !this.dead) this.kill('IPC channel failed')
    })
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
