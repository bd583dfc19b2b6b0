import { readdirSync, readFileSync } from 'node:fs'

// CPU time of processes read from /proc (Linux): user + system clock ticks at 100 Hz.
const TICK_MS = 10

interface Stat {
  pid: number
  ppid: number
  ticks: number
}

function stat(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name is in parentheses and may hold spaces: fields are counted after it.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
    return { pid, ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) }
  } catch {
    return undefined
  }
}

/** CPU milliseconds used so far by each process in `roots` and all its live descendants (sandbox workers, esbuild…). */
export function treeCpuMs(roots: readonly number[]): number {
  const all: Stat[] = []
  for (const name of readdirSync('/proc')) {
    const pid = Number(name)
    if (!Number.isInteger(pid)) continue
    const s = stat(pid)
    if (s) all.push(s)
  }
  const children = new Map<number, Stat[]>()
  for (const s of all) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s])
  let ticks = 0
  const walk = (pid: number) => {
    const s = all.find((x) => x.pid === pid)
    if (s) ticks += s.ticks
    for (const c of children.get(pid) ?? []) walk(c.pid)
  }
  for (const r of roots) walk(r)
  return ticks * TICK_MS
}

/** CPU milliseconds used so far by exactly these processes (PostgreSQL backends). */
export function pidsCpuMs(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + (stat(pid)?.ticks ?? 0) * TICK_MS, 0)
}
