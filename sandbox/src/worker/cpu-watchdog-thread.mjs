// @ts-check
// The watchdog thread of a sandbox worker (see cpu-watchdog.mjs): notices a synchronous run of
// plugin code that keeps the main thread busy past its time limit plus a grace period.
// isolated-vm's timeout for a run is a wall-clock timer that asks V8 to terminate; a run still
// going `grace` after it has not been stopped. The main thread must also have burnt some CPU
// since (MIN_CPU_MS), so a thread that merely waited for a core on a loaded machine, where the
// termination has yet to be noticed, is not mistaken for a stuck one.
import { readFileSync } from 'node:fs'
import { workerData } from 'node:worker_threads'
import { overrun } from './cpu-watchdog.mjs'

/** @type {{ state: Int32Array, pid: number, graceMs: number, pollMs: number, epoch: number }} */
const { state, pid, graceMs, pollMs, epoch } = workerData
// Linux reports thread CPU time in clock ticks of 1/100 s (USER_HZ).
const MS_PER_TICK = 10
const MIN_CPU_MS = 50

/** @returns {number | null} */
function mainThreadCpuMs() {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * MS_PER_TICK
  } catch {
    return null
  }
}

let seen = -1
let since = 0
/** @type {number | null | undefined} the main thread's CPU time when the run was first seen again (undefined: not read yet) */
let cpuAtStart
setInterval(() => {
  if (Atomics.load(state, 3) === 0) {
    seen = -1
    return
  }
  const seq = Atomics.load(state, 0)
  if (seq !== seen) {
    seen = seq
    since = Date.now()
    // Read on the next poll, if the run is still going: a busy worker is in some short run at
    // most polls, and reading /proc for each cost more CPU than this thread's whole job.
    cpuAtStart = undefined
    return
  }
  // The CPU burnt since is counted from one poll later (the limit plus the grace is far longer).
  if (cpuAtStart === undefined) cpuAtStart = mainThreadCpuMs()
  // The worker's own deadline timer cannot fire while its main thread is blocked.
  if (Date.now() - epoch > Atomics.load(state, 4) + graceMs) return overrun(Atomics.load(state, 1), 'wall')
  const limit = Atomics.load(state, 2)
  if (Date.now() - since < limit + graceMs) return
  const cpu = mainThreadCpuMs()
  // Without /proc the wall clock alone decides.
  if (cpu === null || cpuAtStart === null || cpu - cpuAtStart >= MIN_CPU_MS) overrun(Atomics.load(state, 1))
}, pollMs)
