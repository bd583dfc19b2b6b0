import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import autocannon from 'autocannon'
import pg from 'pg'

const tsx = createRequire(import.meta.url).resolve('tsx')

/** Runs a bench server in its own process (so load generation does not share its event loop). */
export async function startServer<T>(
  script: string,
  env: Record<string, string>,
): Promise<{ info: T; stop: () => Promise<void> }> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--no-node-snapshot', ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), '--import', tsx, script],
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
  rps: number
  p50: number
  p99: number
  errors: number
  non2xx: number
}

let counter = 0

/** autocannon against one route; `body` builds a fresh body per request when given. */
export async function load(opts: {
  url: string
  method?: 'GET' | 'POST'
  token?: string
  body?: () => unknown
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
    requests: opts.body
      ? [{ setupRequest: (req: any) => ({ ...req, body: JSON.stringify(opts.body!()) }) }]
      : undefined,
  })
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
  }
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
}

/**
 * Measures a subject against its baseline, after warming both up, in alternating rounds (base, subject; subject, base;
 * …), so that a machine whose speed drifts during the run — other processes, CPU boost, the
 * page cache — weighs on both alike. Each side's figures are the rounds' means (p99: the worst round).
 */
export async function compare(
  base: LoadOptions,
  subject: LoadOptions,
  opts: { rounds?: number; seconds: number; warmUpSeconds?: number },
): Promise<Comparison> {
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
      b.push(await load({ ...base, seconds }))
      s.push(await load({ ...subject, seconds }))
    } else {
      s.push(await load({ ...subject, seconds }))
      b.push(await load({ ...base, seconds }))
    }
  }
  const ratios = s.map((r, i) => r.rps / b[i]!.rps)
  const sorted = [...ratios].sort((x, y) => x - y)
  const mid = Math.floor(rounds / 2)
  return {
    base: combine(b),
    subject: combine(s),
    ratios,
    ratio: rounds % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2,
    p99s: { base: b.map((r) => r.p99), subject: s.map((r) => r.p99) },
  }
}

function combine(rs: LoadResult[]): LoadResult {
  const mean = (f: (r: LoadResult) => number) => rs.reduce((a, r) => a + f(r), 0) / rs.length
  const sum = (f: (r: LoadResult) => number) => rs.reduce((a, r) => a + f(r), 0)
  return {
    rps: mean((r) => r.rps),
    p50: mean((r) => r.p50),
    p99: Math.max(...rs.map((r) => r.p99)),
    errors: sum((r) => r.errors),
    non2xx: sum((r) => r.non2xx),
  }
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${counter++}`
}

export function row(name: string, r: LoadResult, base?: LoadResult | Comparison): string {
  const ratio = !base
    ? ''
    : 'ratios' in base
      ? `  ${pct(base.ratio)} of baseline (rounds: ${base.ratios.map(pct).join(', ')}; p99 by round: ${base.p99s.subject.join(', ')} ms, baseline ${base.p99s.base.join(', ')} ms)`
      : `  ${pct(r.rps / base.rps)} of baseline`
  return `${name.padEnd(44)} ${r.rps.toFixed(0).padStart(7)} req/s   p50 ${String(Math.round(r.p50)).padStart(4)} ms   p99 ${String(r.p99).padStart(4)} ms   errors ${r.errors + r.non2xx}${ratio}`
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
