// The roles write against pgbench running the same transaction — begin, the role drop, the
// tenant and the organisation-status check, the fused statement writing the role, its audit entry
// and its outbox event, commit — as prepared statements over as many connections as the
// kernel's pool (10). pgbench sends `begin` as its own round trip (the kernel folds it into the
// scoping round trip) and makes its ids in SQL: it is PostgreSQL's own ceiling for this
// transaction on this machine. Its outbox row is written as the kernel writes one nobody
// subscribes to — processed at once under the tenant's subscription generation, read before each
// run — and the events left pending come back as the kernel asks for them. Rounds alternate with
// the kernel's, as in compare(). The kernel's side is driven by wrk when it is installed
// (bench/_wrk.ts): a C client, as pgbench's own is.
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { load, median, type LoadResult } from './_harness.js'
import { useWrk, wrkPost } from './_wrk.js'

const run = promisify(execFile)
const PGBENCH = process.env.PGBENCH ?? '/usr/lib/postgresql/15/bin/pgbench'

const SCRIPT = `\\set n random(1, 4000000000000000)
BEGIN;
SELECT set_config('role', 'trellis_app', true), set_config('app.tenant_id', :tenant, true), trellis_org_block(:tenant) AS block;
WITH w AS (INSERT INTO roles (id, tenant_id, name, description, permissions)
           VALUES (gen_random_uuid(), :tenant::uuid, 'pgb-' || :client_id || '-' || :n, '', '{users.read}'::text[])
           ON CONFLICT DO NOTHING RETURNING *),
     a AS (INSERT INTO audit_log (id, tenant_id, at, actor_kind, actor_id, action, target_kind, target_id, data, ip, request_id)
           SELECT gen_random_uuid(), :tenant::uuid, now(), 'user', :actor, 'role.created', 'role', w.id::text,
                  jsonb_build_object('name', w.name, 'permissions', w.permissions), '127.0.0.1', 'pgbench' FROM w),
     e AS (INSERT INTO events (id, type, source, subject, data, processed_at)
           SELECT gen_random_uuid(), 'kernel.role.created', 'trellis/kernel', 'role/' || w.id,
                  jsonb_build_object('roleId', w.id, 'name', w.name, 'permissions', w.permissions),
                  CASE WHEN trellis_current_tenant() = :tenant::uuid
                        AND coalesce((SELECT g.gen = :gen::bigint OR (g.installs_gen <= :gen::bigint AND NOT EXISTS (SELECT 1 FROM webhook_endpoints x
                              WHERE x.tenant_id = g.tenant_id AND x.subscribers_gen > :gen::bigint AND x.status = 'active'
                                AND x.types && '{*,kernel.role.created,kernel.*,kernel.role.*}'::text[]))
                              FROM event_subscriber_gens g WHERE g.tenant_id = trellis_current_tenant()), :gen::bigint = 0)
                       THEN now() END FROM w
           RETURNING id, processed_at)
SELECT w.*, (SELECT coalesce(array_agg(e.id::text), '{}') FROM e WHERE e.processed_at IS NULL) AS trellis_pending_events FROM w;
COMMIT;
`

export interface PgbenchComparison {
  clients: number
  /** kernel 2xx/s ÷ pgbench tps, per round. */
  ratios: number[]
  ratio: number
  pgbenchTps: number[]
  kernel: LoadResult[]
  /** The kernel side's HTTP client: wrk (C, one thread, like pgbench) when installed, else autocannon. */
  client: 'wrk' | 'autocannon'
  /** Every kernel answer 2xx and no pgbench transaction failed. */
  valid: boolean
}

async function pgbench(
  script: string,
  databaseUrl: string,
  o: { tenantId: string; userId: string; clients: number; seconds: number },
) {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  const gen = await client
    .query('select coalesce((select gen from event_subscriber_gens where tenant_id = $1::uuid), 0)::text as gen', [
      o.tenantId,
    ])
    .finally(() => client.end())
  const { stdout } = await run(
    PGBENCH,
    [
      '-n',
      '-M',
      'prepared',
      '-c',
      String(o.clients),
      '-j',
      '1',
      '-T',
      String(Math.max(1, Math.round(o.seconds))),
      '-D',
      `tenant=${o.tenantId}`,
      '-D',
      `actor=${o.userId}`,
      '-D',
      `gen=${gen.rows[0].gen}`,
      '-f',
      script,
      databaseUrl,
    ],
    { maxBuffer: 1 << 24 },
  )
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)?.[1] ?? Number.NaN)
  const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0)
  if (failed > 0 || !(tps > 0)) console.error(`!! INVALID RUN — pgbench: ${failed} failed transactions, tps ${tps}`)
  return { tps, ok: failed === 0 && tps > 0 }
}

/**
 * Waits until the kernel's audit sealer has sealed every entry of the tenant. pgbench writes its
 * audit entries unsealed, as the kernel's statement does, and the kernel's sealer seals them —
 * in the kernel's process, with the chain's hashing: without this wait the kernel's next round
 * paid for sealing the entries of pgbench's round before. Each side starts with nothing left
 * to seal; the kernel seals its own entries during its round (each write nudges the sealer).
 */
async function untilSealed(databaseUrl: string, tenantId: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    const t0 = performance.now()
    for (;;) {
      const { rows } = await client.query<{ left: boolean }>(
        'select exists (select 1 from audit_log where tenant_id = $1::uuid and hash is null) as left',
        [tenantId],
      )
      if (!rows[0]!.left) return
      if (performance.now() - t0 > 120_000) throw new Error('the audit sealer did not catch up within 120 s')
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  } finally {
    await client.end()
  }
}

export async function compareWithPgbench(o: {
  databaseUrl: string
  tenantId: string
  userId: string
  kernel: {
    url: string
    token: string
    body: () => unknown
    /** The same body as a Lua expression of `prefix` and `n`, for wrk (bench/_wrk.ts). */
    wrkBody: string
  }
  seconds: number
  rounds: number
  clients?: number
}): Promise<PgbenchComparison> {
  const clients = o.clients ?? 10
  const dir = await mkdtemp(join(tmpdir(), 'trellis-pgbench-'))
  const script = join(dir, 'roles-write.sql')
  await writeFile(script, SCRIPT)
  const seconds = Math.max(1, o.seconds / o.rounds)
  const subject = { url: o.kernel.url, method: 'POST' as const, token: o.kernel.token, body: o.kernel.body }
  const client = useWrk() ? 'wrk' : 'autocannon'
  // 50 HTTP connections keep the kernel's 10 database connections busy, as in the other rounds.
  const http = (s: number) =>
    client === 'wrk'
      ? wrkPost({ url: o.kernel.url, token: o.kernel.token, body: o.kernel.wrkBody, connections: 50, seconds: s })
      : load({ ...subject, connections: 50, seconds: s })
  try {
    await pgbench(script, o.databaseUrl, { ...o, clients, seconds: 2 })
    await http(2)
    const tps: number[] = []
    const kernel: LoadResult[] = []
    let ok = true
    for (let i = 0; i < o.rounds; i++) {
      const pb = async () => {
        await untilSealed(o.databaseUrl, o.tenantId)
        const r = await pgbench(script, o.databaseUrl, { ...o, clients, seconds })
        ok &&= r.ok
        tps.push(r.tps)
      }
      const k = async () => {
        await untilSealed(o.databaseUrl, o.tenantId)
        kernel.push(await http(seconds))
      }
      if (i % 2 === 0) {
        await pb()
        await k()
      } else {
        await k()
        await pb()
      }
    }
    const ratios = kernel.map((r, i) => r.rps / tps[i]!)
    return {
      clients,
      ratios,
      ratio: median(ratios),
      pgbenchTps: tps,
      kernel,
      client,
      valid: ok && kernel.every((r) => r.errors + r.non2xx === 0),
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
