// One tenant's hung, spinning or transaction-holding plugin handlers must not slow another
// tenant down: no database connection is held while plugin code merely runs, an idle held
// transaction is rolled back, a tenant holds at most part of the pool, and concurrent
// invocations are capped per tenant and installation.
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildPlugin } from '@trellis/plugin-sdk'
import { DB_KINDS, startTestKernel, createTenantWithAdmin, type TestKernel, type Reply } from './helpers/test-kernel.js'
import { eventually } from './helpers/receiver.js'
import { registerVersion } from './helpers/plugin-versions.js'

const FIXTURES = join(import.meta.dirname, 'fixtures', 'plugins')
const dir = join(FIXTURES, 'hog')
const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
const b = await buildPlugin({ dir, write: false })
const hog = { manifest, code: b.code, sourceMap: b.sourceMap, sha256: b.sha256 }

const ATTACKERS = 20
// 100 requests per route, judged by the p97 (the fourth-worst): a few scheduler hiccups of a loaded
// machine, or the one stall the design allows (the attacker's first idle transaction on the embedded
// database costs up to its idle limit once), do not decide it; a missing protection stalls most
// requests, and fails it all the same.
const SAMPLES = 100
const WALL_MS = 12_000
const CPU_MS = 1000
// The operator's cap on an installation's concurrent invocations (the default is 16).
const CAP = 8
// On the embedded database (one connection for everybody) the operator shortens the idle limit
// (TRELLIS_PLUGIN_TX_IDLE_MS, default 1000 ms): an attacker's first idle transaction then costs
// the other tenant at most this once, before the tenant's later ones give way after 25 ms.
const EMBEDDED_IDLE_MS = 250
// The bound on the other tenant's p97 is 2× its quiet p97, measured just before in the same
// run; but on a shared, loaded 2-core machine a quiet p97 of a few milliseconds is itself noise
// (between two quiet rounds of this very test it has varied threefold), and one scheduler
// hiccup costs tens of milliseconds whatever the kernel does. The floor absorbs that and stays
// far below what the attack costs when a protection is missing: an unprotected held
// transaction stalls the embedded database for the idle limit (1000 ms) per hold, and a
// connection held for the plugin's whole run stalls it for the wall clock (12 s here); the
// attack as reported stalled the other tenant for 7–20 s. (That the attacker holds no
// connection at all while merely hanging is asserted directly on PostgreSQL.)
const FLOOR_MS = 150

function p97(samples: number[]): number {
  const s = [...samples].sort((x, y) => x - y)
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.97) - 1)]!
}

/** The other tenant's latency: a plugin route with a data call and a kernel route reading the database, alternated. */
async function latencies(k: TestKernel, token: string, n: number): Promise<{ plugin: number[]; kernel: number[] }> {
  const plugin: number[] = []
  const kernel: number[] = []
  for (let i = 0; i < n; i++) {
    for (const [url, into] of [
      ['/v1/x/hog/count', plugin],
      ['/v1/installations', kernel],
    ] as const) {
      const started = performance.now()
      const r = await k.req('GET', url, { token })
      into.push(performance.now() - started)
      if (r.status !== 200) throw new Error(`${url}: ${r.status} ${JSON.stringify(r.body)}`)
    }
  }
  return { plugin, kernel }
}

async function idleInTransaction(k: TestKernel): Promise<number> {
  const [row] = await k.ownerSql(
    `select count(*)::int as n from pg_stat_activity where datname = current_database() and state like 'idle in transaction%'`,
  )
  return row.n
}

for (const kind of DB_KINDS) {
  t.test(`plugin fairness on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind, {
      plugins: {
        sandboxWorkers: 2,
        sandboxLimits: { wallMs: WALL_MS, cpuMs: CPU_MS },
        maxInvocationsPerInstallation: CAP,
        ...(kind === 'pglite' ? { transactionIdleMs: EMBEDDED_IDLE_MS } : {}),
      },
    })
    const host = k.kernel.ctx.plugins
    await registerVersion(k, hog)
    const a = await createTenantWithAdmin(k, `fair-a-${kind}`)
    const o = await createTenantWithAdmin(k, `fair-b-${kind}`)
    for (const tenant of [a, o]) {
      const r = await k.req('POST', '/v1/installations', {
        token: tenant.token,
        body: { plugin: '@acme/hog', version: '1.0.0', capabilities: hog.manifest.capabilities },
      })
      t.equal(r.status, 201, JSON.stringify(r.body))
    }
    t.equal((await k.req('POST', '/v1/x/hog/items', { token: o.token, body: { name: 'first' } })).status, 201)

    await latencies(k, o.token, 10) // warm-up: isolates, caches, prepared statements

    for (const attack of ['hang', 'hold', 'spin'] as const) {
      const title =
        attack === 'spin'
          ? `${ATTACKERS} CPU-heavy invocations of one tenant hold no connection and never stall the other tenant for a spinner's run`
          : `${ATTACKERS} ${attack} invocations of one tenant leave the other tenant's p97 within 2× its quiet p97`
      await t.test(title, async (t) => {
        // Quiet first, just before the attack, so both see the machine as loaded as it is now.
        const quiet = await latencies(k, o.token, SAMPLES)
        const quietP97 = { plugin: p97(quiet.plugin), kernel: p97(quiet.kernel) }
        t.comment(
          `quiet p97 on ${kind}: plugin route ${quietP97.plugin.toFixed(1)} ms, kernel route ${quietP97.kernel.toFixed(1)} ms`,
        )
        let settled = 0
        const replies: Array<Promise<Reply>> = []
        for (let i = 0; i < ATTACKERS; i++)
          replies.push(k.req('GET', `/v1/x/hog/${attack}`, { token: a.token }).finally(() => settled++))
        // The attack is under way: as many of its invocations run as the caps allow, the rest were refused.
        await eventually(async () => host.runningInvocations(a.orgId) >= CAP)
        const loaded = await latencies(k, o.token, SAMPLES)
        if (attack !== 'spin')
          t.ok(
            host.runningInvocations(a.orgId) > 0 && settled < ATTACKERS,
            'the measurement ran while the attack was still going',
          )
        if (kind === 'postgres') {
          // The kernel's background work (the audit sealer, the event dispatcher) may be between
          // two statements of its own transaction at any instant, while an attacker that holds a
          // connection holds it for its whole run: so some sample taken while the attack is still
          // running must show no more than the bound.
          const bound = attack === 'hang' ? 0 : 5
          let held = await idleInTransaction(k)
          let during = host.runningInvocations(a.orgId) > 0 && settled < ATTACKERS
          for (let i = 0; i < 20 && !(held <= bound && during) && settled < ATTACKERS; i++) {
            await new Promise((r) => setTimeout(r, 100))
            held = await idleInTransaction(k)
            during = host.runningInvocations(a.orgId) > 0 && settled < ATTACKERS
          }
          t.ok(
            held <= bound && during,
            `the attacker holds no connection (hang) or at most half the pool (after a data call): ${held} idle in transaction`,
          )
        }
        const loadedP97 = { plugin: p97(loaded.plugin), kernel: p97(loaded.kernel) }
        t.comment(
          `${attack} p97 on ${kind}: plugin route ${loadedP97.plugin.toFixed(1)} ms, kernel route ${loadedP97.kernel.toFixed(1)} ms`,
        )
        for (const route of ['plugin', 'kernel'] as const) {
          if (attack === 'spin') {
            // How the CPU is shared between tenants' running code is the sandbox's scheduling
            // (workers, cordons — ADR 0001); what the host guarantees is that a spinning handler
            // holds no connection past its idle limit and no request of another tenant waits for
            // a whole spinner to finish, as it did while the spinner held its transaction.
            t.ok(
              loadedP97[route] < CPU_MS,
              `${route} route: p97 ${loadedP97[route].toFixed(1)} ms below one spinner's CPU limit (${CPU_MS} ms)`,
            )
            continue
          }
          const bound = Math.max(2 * quietP97[route], FLOOR_MS)
          t.ok(
            loadedP97[route] <= bound,
            `${route} route: p97 ${loadedP97[route].toFixed(1)} ms within ${bound.toFixed(1)} ms`,
          )
        }
        const done = await Promise.all(replies)
        const refused = done.filter((r) => r.status === 429)
        t.ok(
          refused.length >= ATTACKERS - CAP,
          `invocations past the installation's cap are refused (${refused.length})`,
        )
        t.equal(refused[0]?.body.code, 'PLG_ERR_TOO_MANY_INVOCATIONS')
        t.equal(refused[0]?.headers['retry-after'], '1', 'with retry-after')
        const failed = new Set(done.filter((r) => r.status !== 429).map((r) => r.body.code))
        const expected = attack === 'hang' ? ['SBX_ERR_TIMEOUT'] : ['PLG_ERR_TRANSACTION_IDLE', 'SBX_ERR_TIMEOUT']
        t.ok(
          [...failed].every((c) => expected.includes(c)),
          `the attacker's own invocations fail with ${expected.join(' or ')}: ${[...failed].join(', ')}`,
        )
        // Their code is gone from the sandbox before the next attack starts.
        await eventually(async () => host.runningInvocations(a.orgId) === 0, WALL_MS + 10_000)
      })
    }

    await t.test(
      'an invocation that wrote and then hangs is rolled back at the idle limit, long before its wall clock',
      async (t) => {
        const r = await k.req('POST', '/v1/x/hog/write-then-hang', { token: a.token, body: { name: 'ghost' } })
        t.equal(r.status, 504)
        // The code says which limit ended it (the wall clock answers another), however long that took here.
        t.equal(r.body.code, 'PLG_ERR_TRANSACTION_IDLE')
        const ghosts = await k.ownerSql(
          `select count(*)::int as n from plugin_records where tenant_id = ? and data ->> 'name' = 'ghost'`,
          [a.orgId],
        )
        t.equal(ghosts[0].n, 0, 'nothing it wrote was committed')
        const ok = await k.req('POST', '/v1/x/hog/items', { token: a.token, body: { name: 'kept' } })
        t.equal(ok.status, 201, 'the tenant carries on')
        await eventually(async () => host.runningInvocations(a.orgId) === 0, WALL_MS + 10_000)
      },
    )
  })
}
