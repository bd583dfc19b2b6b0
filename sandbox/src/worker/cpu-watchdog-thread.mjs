// The watchdog thread of a sandbox worker (see cpu-watchdog.mjs): notices a synchronous run of
// plugin code that keeps the main thread busy past its CPU limit plus a grace period, measured
// in the main thread's own CPU time (so a loaded machine, where wall time outruns CPU time,
// does not get a healthy worker killed).
import { readFileSync } from 'node:fs'
import { workerData } from 'node:worker_threads'
import { overrun } from './cpu-watchdog.mjs'

const { state, pid, graceMs, pollMs, epoch } = workerData
// Linux reports thread CPU time in clock ticks of 1/100 s (USER_HZ).
const MS_PER_TICK = 10

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
let cpuAtStart = null
setInterval(() => {
  if (Atomics.load(state, 3) === 0) {
    seen = -1
    return
  }
  const seq = Atomics.load(state, 0)
  if (seq !== seen) {
    seen = seq
    since = Date.now()
    cpuAtStart = mainThreadCpuMs()
    return
  }
  // The worker's own deadline timer cannot fire while its main thread is blocked.
  if (Date.now() - epoch > Atomics.load(state, 4) + graceMs) return overrun(Atomics.load(state, 1), 'wall')
  const limit = Atomics.load(state, 2)
  if (Date.now() - since < limit + graceMs) return
  const cpu = mainThreadCpuMs()
  // Without /proc the wall clock alone decides (it is at least the CPU time).
  if (cpu === null || cpuAtStart === null || cpu - cpuAtStart >= limit + graceMs - pollMs) overrun(Atomics.load(state, 1))
}, pollMs)
