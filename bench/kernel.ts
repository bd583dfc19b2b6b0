// `npm run bench -- kernel`: the kernel's authenticated, tenant-scoped, audited writes through
// the API — POST /v1/roles, /v1/api-keys and /v1/webhooks, PUT /v1/users/:id/role and PATCH
// /v1/installations/:id, all on the one audited write path — each against bare Fastify + pg
// making the same round trips with the same prepared statements (see servers/baseline-server.ts),
// at 200 connections by default (`BENCH_CONNECTIONS=50,200` for both); the roles write against
// pgbench running the same transaction on the same 10 connections (_pgbench.ts; the kernel's side
// driven by wrk, a C client as pgbench's is, when installed: _wrk.ts); and an
// authenticated route that touches no table against Fastify's hello world. All measured in this
// run in alternating rounds, on one fresh PostgreSQL database; only 2xx answers count, on both
// sides. Each round also reads both server processes' CPU time (user + system, from /proc — what
// process.cpuUsage reports), so each write's CPU cost per request is printed beside its ratio:
// the figure a loaded machine disturbs least — and the CPU time of the PostgreSQL backends each
// side's server holds (the baseline's connections name themselves `bench-baseline`; every other
// backend of the database but this process's own is the kernel's, its background pool included).
// About 2.5 minutes with the defaults.
import { fileURLToPath } from 'node:url'
import {
  compare,
  load,
  loadAverage,
  median,
  row,
  uniqueName,
  withBenchDatabase,
  startServer,
  type Comparison,
  type LoadResult,
} from './_harness.js'
import pg from 'pg'
import { compareWithPgbench } from './_pgbench.js'
import { pidsCpuMs } from './_proc-cpu.js'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
/** Measured seconds per side and comparison, split into `BENCH_ROUNDS` rounds. */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4)
const WARM_UP_SECONDS = Number(process.env.BENCH_WARM_UP_SECONDS ?? 1)
/** Connection counts measured (`BENCH_CONNECTIONS=50,200`). */
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? '200').split(',').map(Number)
/** Which writes (`BENCH_WRITES=roles,users`); all five by default. */
const ONLY = process.env.BENCH_WRITES?.split(',')
/**
 * `BENCH_WRITES_ONLY=1`: the writes against their baselines and nothing else (no pgbench, no
 * no-DB route) — for a CPU profile of the servers (`BENCH_NODE_ARGS=--cpu-prof`) that holds
 * only the writes.
 */
const WRITES_ONLY = process.env.BENCH_WRITES_ONLY === '1'

interface KernelInfo {
  url: string
  token: string
  tenantId: string
  userId: string
  memberId: string
  installationId: string
  pid: number
}

type LoadOptions = Parameters<typeof load>[0]

/** A comparison with each side's CPU time per 2xx answer (µs), one figure per round. */
interface CpuComparison extends Comparison {
  cpuUs: { base: number[]; subject: number[] }
  /** The same for the PostgreSQL backends of each side's server. */
  pgCpuUs: { base: number[]; subject: number[] }
}

/** CPU milliseconds so far of each of the database's backends, with the side it serves (see the header). */
type PgCpu = () => Promise<Map<number, { side: 'base' | 'subject'; ms: number }>>

async function pgBackendCpu(databaseUrl: string): Promise<{ read: PgCpu; close: () => Promise<void> }> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'bench-observer' })
  await client.connect()
  return {
    read: async () => {
      const { rows } = await client.query<{ pid: number; app: string }>(
        `select pid, application_name as app from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'`,
      )
      const backends: Awaited<ReturnType<PgCpu>> = new Map()
      for (const r of rows)
        backends.set(r.pid, { side: r.app === 'bench-baseline' ? 'base' : 'subject', ms: pidsCpuMs([r.pid]) })
      return backends
    },
    close: () => client.end(),
  }
}

/** The CPU milliseconds `side`'s backends used between two reads (a backend opened meanwhile counts from zero; one closed meanwhile is lost). */
function pgCpuBetween(
  before: Awaited<ReturnType<PgCpu>>,
  after: Awaited<ReturnType<PgCpu>>,
  side: 'base' | 'subject',
): number {
  let ms = 0
  for (const [pid, b] of after) if (b.side === side) ms += b.ms - (before.get(pid)?.ms ?? 0)
  return ms
}

/**
 * compare() with CPU: alternating rounds (base first, then subject first, …), and around each
 * round the CPU time of the measured side's server process, divided by its 2xx answers.
 */
async function compareCpu(
  base: LoadOptions,
  subject: LoadOptions,
  pids: { base: number; subject: number },
  pgCpu: PgCpu,
): Promise<CpuComparison> {
  await load({ ...base, seconds: WARM_UP_SECONDS })
  await load({ ...subject, seconds: WARM_UP_SECONDS })
  const seconds = Math.max(1, SECONDS / ROUNDS)
  const b: LoadResult[] = []
  const s: LoadResult[] = []
  const cpuUs = { base: [] as number[], subject: [] as number[] }
  const pgCpuUs = { base: [] as number[], subject: [] as number[] }
  const measure = async (side: 'base' | 'subject', o: LoadOptions, pid: number, into: LoadResult[]) => {
    const before = pidsCpuMs([pid])
    const pgBefore = await pgCpu()
    const r = await load({ ...o, seconds })
    const answered = r.rps * seconds
    const per = (ms: number) => (answered > 0 ? (ms * 1000) / answered : Number.NaN)
    cpuUs[side].push(per(pidsCpuMs([pid]) - before))
    pgCpuUs[side].push(per(pgCpuBetween(pgBefore, await pgCpu(), side)))
    into.push(r)
  }
  for (let i = 0; i < ROUNDS; i++) {
    if (i % 2 === 0) {
      await measure('base', base, pids.base, b)
      await measure('subject', subject, pids.subject, s)
    } else {
      await measure('subject', subject, pids.subject, s)
      await measure('base', base, pids.base, b)
    }
  }
  const ratios = s.map((r, i) => r.rps / b[i]!.rps)
  const mean = (rs: LoadResult[], f: (r: LoadResult) => number) => rs.reduce((a, r) => a + f(r), 0) / rs.length
  const combine = (rs: LoadResult[]): LoadResult => ({
    rps: mean(rs, (r) => r.rps),
    p50: mean(rs, (r) => r.p50),
    p99: Math.max(...rs.map((r) => r.p99)),
    errors: rs.reduce((a, r) => a + r.errors, 0),
    non2xx: rs.reduce((a, r) => a + r.non2xx, 0),
    statuses: {},
    load: Math.max(...rs.map((r) => r.load)),
  })
  return {
    base: combine(b),
    subject: combine(s),
    ratios,
    ratio: median(ratios),
    p99s: { base: b.map((r) => r.p99), subject: s.map((r) => r.p99) },
    loads: s.map((r) => r.load),
    valid: [...b, ...s].every((r) => r.errors + r.non2xx === 0 && r.rps > 0),
    cpuUs,
    pgCpuUs,
  }
}

export async function run(): Promise<void> {
  await withBenchDatabase(`trellis_bench_${process.pid}`, async (databaseUrl) => {
    const kernel = await startServer<KernelInfo>(here('./servers/kernel-server.ts'), {
      DATABASE_URL: databaseUrl,
      TRELLIS_SECRET_KEY: 'b'.repeat(64),
    })
    const info = kernel.info
    const baseline = await startServer<{ url: string; pid: number }>(here('./servers/baseline-server.ts'), {
      DATABASE_URL: databaseUrl,
      BENCH_TENANT_ID: info.tenantId,
      BENCH_USER_ID: info.userId,
    })
    const pids = { base: baseline.info.pid, subject: info.pid }
    const backends = await pgBackendCpu(databaseUrl)
    const writes: Array<{ name: string; method: 'POST' | 'PUT' | 'PATCH'; path: string; body: () => unknown }> = [
      {
        name: 'roles',
        method: 'POST',
        path: 'roles',
        body: () => ({ name: uniqueName('r'), permissions: ['users.read'] }),
      },
      {
        name: 'api-keys',
        method: 'POST',
        path: 'api-keys',
        body: () => ({ name: uniqueName('k'), permissions: ['users.read'] }),
      },
      // A public address literal: no name to resolve, so no DNS lookup on either side. The
      // endpoints subscribe to a type none of these writes emits: creating a subscription is the
      // write measured here, and the other writes keep the subscribers they had (none).
      {
        name: 'webhooks',
        method: 'POST',
        path: 'webhooks',
        body: () => ({ url: 'https://93.184.215.14/hooks', types: ['kernel.tenant.suspended'] }),
      },
      { name: 'users', method: 'PUT', path: `users/${info.memberId}/role`, body: () => ({ role: 'tenant_member' }) },
      {
        name: 'installations',
        method: 'PATCH',
        path: `installations/${info.installationId}`,
        body: () => ({ status: 'active' }),
      },
    ]
    try {
      const results: Array<[string, number, CpuComparison]> = []
      for (const connections of CONNECTIONS) {
        // Each target against its baseline in alternating rounds (see compareCpu).
        for (const w of writes.filter((x) => !ONLY || ONLY.includes(x.name))) {
          const c = await compareCpu(
            { url: `${baseline.info.url}/baseline/${w.path}`, method: w.method, body: w.body, connections },
            { url: `${info.url}/v1/${w.path}`, method: w.method, token: info.token, body: w.body, connections },
            pids,
            backends.read,
          )
          results.push([w.name, connections, c])
          console.log(row(`baseline: Fastify + pg, ${w.name} write, ${connections} conn`, c.base))
          console.log(row(`kernel: ${w.method} /v1/${w.name} (auth, RLS, audit)`, c.subject, c))
        }
      }
      const pgbench =
        !WRITES_ONLY && (!ONLY || ONLY.includes('roles'))
          ? await compareWithPgbench({
              databaseUrl,
              tenantId: info.tenantId,
              userId: info.userId,
              kernel: {
                url: `${info.url}/v1/roles`,
                token: info.token,
                body: writes[0]!.body,
                wrkBody: `string.format('{"name":"%s-%d","permissions":["users.read"]}', prefix, n)`,
              },
              seconds: SECONDS,
              rounds: ROUNDS,
            })
          : undefined
      const sessions = WRITES_ONLY
        ? undefined
        : await compare(
            { url: `${baseline.info.url}/hello` },
            { url: `${info.url}/v1/auth/session`, token: info.token },
            { seconds: SECONDS, rounds: ROUNDS, warmUpSeconds: WARM_UP_SECONDS },
          )
      if (sessions) {
        console.log(row('baseline: Fastify hello', sessions.base))
        console.log(row('kernel: GET /v1/auth/session (auth, no DB)', sessions.subject, sessions))
      }
      console.log()
      for (const [name, connections, c] of results) {
        const cpuK = median(c.cpuUs.subject)
        const cpuB = median(c.cpuUs.base)
        const pgK = median(c.pgCpuUs.subject)
        const pgB = median(c.pgCpuUs.base)
        console.log(
          `audited write ${name} at ${connections} connections: ${c.valid ? '' : 'INVALID — '}${pct(c.ratio)} of baseline (target ≥ 80 %; rounds ${c.ratios.map(pct).join(', ')}); p99 ${c.subject.p99} ms vs baseline ${c.base.p99} ms = ${(c.subject.p99 / c.base.p99).toFixed(2)}× (target ≤ 1.5× at 200); CPU per write ${us(cpuK)} kernel vs ${us(cpuB)} baseline = ${(cpuK / cpuB).toFixed(2)}× (rounds ${c.cpuUs.subject.map(us).join(', ')} vs ${c.cpuUs.base.map(us).join(', ')}); PostgreSQL CPU per write ${us(pgK)} kernel vs ${us(pgB)} baseline = ${(pgK / pgB).toFixed(2)}×`,
        )
      }
      if (pgbench)
        console.log(
          `roles write vs pgbench, same transaction, ${pgbench.clients} connections, the kernel driven by ${pgbench.client}: ${pgbench.valid ? '' : 'INVALID — '}${pct(pgbench.ratio)} (target ≥ 60 %; rounds ${pgbench.ratios.map(pct).join(', ')}; pgbench ${pgbench.pgbenchTps.map((x) => x.toFixed(0)).join(', ')} tps)`,
        )
      if (sessions)
        console.log(
          `authenticated no-DB route: ${sessions.valid ? '' : 'INVALID — '}${pct(sessions.ratio)} of Fastify hello (target ≥ 60 %)`,
        )
      console.log(loadAverage())
      if (!results.every(([, , c]) => c.valid) || (sessions && !sessions.valid) || (pgbench && !pgbench.valid))
        process.exitCode = 1
    } finally {
      await backends.close()
      await baseline.stop()
      await kernel.stop()
    }
  })
}

const pct = (x: number) => `${(x * 100).toFixed(0)} %`
const us = (x: number) => `${Math.round(x)} µs`
