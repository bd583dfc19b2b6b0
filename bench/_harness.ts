import { fileURLToPath } from 'node:url'
import { spawn, type ChildProcess } from 'node:child_process'
import { loadavg } from 'node:os'
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import pg from 'pg'

const loader = fileURLToPath(new URL('../scripts/ts-loader/register.mjs', import.meta.url))

/** Runs a bench server in its own process (so load generation does not share its event loop). */
export async function startServer<T>(
  script: string,
  env: Record<string, string>,
): Promise<{ info: T; stop: () => Promise<void> }> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--no-node-snapshot',
      ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
      '--import',
      loader,
      script,
    ],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const info = await new Promise<T>((resolve, reject) => {
    let buf = ''
    child.stdout!.on('data', (d) => {
      buf += d
      const nl = buf.indexOf('\n')
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)))
    })
    child.on('exit', (code) => reject(new Error(`${script} exited with ${code}`)))
  })
  return {
    info,
    stop: () =>
      new Promise<void>((r) => {
        child.removeAllListeners('exit')
        child.on('exit', () => r())
        child.kill('SIGTERM')
      }),
  }
}

export interface LoadResult {
  /** Responses a second that answered 2xx: a fast 401 or 429 is not throughput. */
  rps: number
  p50: number
  p99: number
  /** Requests that got no answer (socket errors, timeouts). */
  errors: number
  /** Answers that were not 2xx, counted per status code in `statuses`. */
  non2xx: number
  statuses: Record<string, number>
  /** The machine's 1-minute load average when the measure ended. */
  load: number
}

/** The machine's load average (1 min / 5 min), printed next to every figure: 2 cores are shared. */
export function loadAverage(): string {
  const [one, five] = loadavg()
  return `load avg ${one!.toFixed(1)} (1 min) ${five!.toFixed(1)} (5 min)`
}

/**
 * Every answer of a measured side must be 2xx. Any other answer or a request that got none
 * makes the run invalid: it is said loudly (stderr and the printed row) and the process exits 1.
 */
export function check2xx(label: string, r: Pick<LoadResult, 'errors' | 'non2xx' | 'statuses'>): boolean {
  if (r.errors + r.non2xx === 0) return true
  const codes = Object.entries(r.statuses)
    .filter(([code]) => !code.startsWith('2'))
    .map(([code, n]) => `${n}× ${code}`)
    .join(', ')
  console.error(
    `!! INVALID RUN — ${label}: ${r.non2xx} answers were not 2xx${codes ? ` (${codes})` : ''}, ${r.errors} requests got no answer`,
  )
  process.exitCode = 1
  return false
}

let counter = 0

/** autocannon against one route; `body` builds a fresh body per request when given. */
export async function load(opts: {
  url: string
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH'
  token?: string
  body?: () => unknown
  /** Builds each request's path (and query) when it changes per request. */
  path?: () => string
  connections?: number
  seconds?: number
}): Promise<LoadResult> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`
  const result = await autocannon({
    url: opts.url,
    method: opts.method ?? 'GET',
    connections: opts.connections ?? 50,
    duration: opts.seconds ?? 10,
    headers,
    requests:
      opts.body || opts.path
        ? [
            {
              setupRequest: (req: any) => ({
                ...req,
                ...(opts.path ? { path: opts.path() } : {}),
                ...(opts.body ? { body: JSON.stringify(opts.body()) } : {}),
              }),
            },
          ]
        : undefined,
  })
  const statuses: Record<string, number> = {}
  for (const [code, v] of Object.entries(result.statusCodeStats ?? {})) statuses[code] = v.count ?? 0
  const r: LoadResult = {
    rps: result['2xx'] / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
    statuses,
    load: loadavg()[0]!,
  }
  check2xx(`${opts.method ?? 'GET'} ${opts.url}`, r)
  return r
}

type LoadOptions = Parameters<typeof load>[0]

export interface Comparison {
  base: LoadResult
  subject: LoadResult
  /** subject ÷ base requests per second, one per round. */
  ratios: number[]
  /** The median of `ratios`. */
  ratio: number
  /** Each round's p99, base and subject, in ms. */
  p99s: { base: number[]; subject: number[] }
  /** The 1-minute load average after each round. */
  loads: number[]
  /** Both sides answered 2xx to every request in every round. */
  valid: boolean
}

/**
 * Measures a subject against its baseline, after warming both up, in alternating rounds (base, subject; subject, base;
 * …), so that a machine whose speed drifts during the run — other processes, CPU boost, the
 * page cache — weighs on both alike. Each side's figures are the rounds' means (p99: the worst round).
 */
export async function compare(
  base: LoadOptions,
  subject: LoadOptions,
  opts: {
    rounds?: number
    seconds: number
    warmUpSeconds?: number
    /**
     * Awaited before each measured round: e.g. until the server has finished the requests the
     * previous round left running (the load generator stops waiting at a round's end, a server
     * does not), so that no round meets the last one's backlog.
     */
    before?: () => Promise<unknown>
  },
): Promise<Comparison> {
  const measure = async (side: LoadOptions, seconds: number) => {
    await opts.before?.()
    return load({ ...side, seconds })
  }
  // Both warmed up first (JIT, connection pools, caches), unmeasured.
  await load({ ...base, seconds: opts.warmUpSeconds ?? 2 })
  await load({ ...subject, seconds: opts.warmUpSeconds ?? 2 })
  const rounds = opts.rounds ?? 4
  const seconds = Math.max(1, opts.seconds / rounds)
  const b: LoadResult[] = []
  const s: LoadResult[] = []
  for (let i = 0; i < rounds; i++) {
    // Each pair in the other order from the last (base first, then subject first, …), so that
    // whatever builds up during a run — table size, dead rows, vacuum — falls on both alike.
    if (i % 2 === 0) {
      b.push(await measure(base, seconds))
      s.push(await measure(subject, seconds))
    } else {
      s.push(await measure(subject, seconds))
      b.push(await measure(base, seconds))
    }
  }
  const ratios = s.map((r, i) => r.rps / b[i]!.rps)
  return {
    base: combine(b),
    subject: combine(s),
    ratios,
    ratio: median(ratios),
    p99s: { base: b.map((r) => r.p99), subject: s.map((r) => r.p99) },
    loads: s.map((r) => r.load),
    // A round in which nothing was answered 2xx measured nothing, however clean it was.
    valid: [...b, ...s].every((r) => r.errors + r.non2xx === 0 && r.rps > 0),
  }
}

function combine(rs: LoadResult[]): LoadResult {
  const mean = (f: (r: LoadResult) => number) => rs.reduce((a, r) => a + f(r), 0) / rs.length
  const sum = (f: (r: LoadResult) => number) => rs.reduce((a, r) => a + f(r), 0)
  const statuses: Record<string, number> = {}
  for (const r of rs) for (const [code, n] of Object.entries(r.statuses)) statuses[code] = (statuses[code] ?? 0) + n
  return {
    rps: mean((r) => r.rps),
    p50: mean((r) => r.p50),
    p99: Math.max(...rs.map((r) => r.p99)),
    errors: sum((r) => r.errors),
    non2xx: sum((r) => r.non2xx),
    statuses,
    load: Math.max(...rs.map((r) => r.load)),
  }
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${counter++}`
}

export function row(name: string, r: LoadResult, base?: LoadResult | Comparison): string {
  const ratio = !base
    ? ''
    : 'ratios' in base
      ? `  ${base.valid ? '' : 'INVALID (not every answer was 2xx) '}${pct(base.ratio)} of baseline (rounds: ${base.ratios.map(pct).join(', ')}; p99 by round: ${base.p99s.subject.join(', ')} ms, baseline ${base.p99s.base.join(', ')} ms; load avg by round ${base.loads.map((l) => l.toFixed(1)).join(', ')})`
      : `  ${pct(r.rps / base.rps)} of baseline`
  return `${name.padEnd(44)} ${r.rps.toFixed(0).padStart(7)} 2xx/s   p50 ${String(Math.round(r.p50)).padStart(4)} ms   p99 ${String(r.p99).padStart(4)} ms   not 2xx ${r.errors + r.non2xx}${ratio}`
}

/** The median of a list of numbers. */
export function median(xs: readonly number[]): number {
  const v = [...xs].sort((a, b) => a - b)
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2
}

/** The `p`th percentile of a list of numbers (nearest rank). */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : Number.NaN
}

const pct = (x: number) => `${(x * 100).toFixed(0)} %`

const ADMIN_URL = process.env.TRELLIS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/** Runs `fn` against a fresh PostgreSQL database, dropped afterwards whatever happens. */
export async function withBenchDatabase<T>(name: string, fn: (databaseUrl: string) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: ADMIN_URL })
  await admin.connect()
  await admin.query(`create database ${name}`)
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  try {
    return await fn(url.toString())
  } finally {
    await admin.query(`drop database if exists ${name} with (force)`)
    await admin.end()
  }
}

/** Removes a run's BullMQ keys (everything under `prefix`) from the shared Redis. */
export async function clearQueues(redisUrl: string, prefix: string): Promise<void> {
  const r = new Redis(redisUrl)
  try {
    const keys = await r.keys(`${prefix}*`)
    if (keys.length) await r.del(...keys)
  } finally {
    r.disconnect()
  }
}
