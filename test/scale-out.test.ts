import t from 'tap'
import http from 'node:http'
import { randomBytes, randomUUID } from 'node:crypto'
import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { createKernel } from '../core/src/kernel.js'
import { loadConfig } from '../core/src/config.js'
import { createPlatformAdmin } from '../core/src/bootstrap.js'
import { DB_KINDS, createTestDatabase } from '../core/test/helpers/test-kernel.js'
import { eventually, startReceiver } from '../core/test/helpers/receiver.js'
import { freePort, startRedis, stopProcess } from '../core/test/helpers/redis-server.js'

// Two API and two worker processes (TRELLIS_ROLE) on one PostgreSQL database and one Redis
// (BullMQ), on loopback. What is shown is read from positive signals — the receiver's record,
// the database, each process's own /metrics — never from how long something took.

const tsx = createRequire(import.meta.url).resolve('tsx')
const PROCESS = fileURLToPath(new URL('./helpers/role-process.ts', import.meta.url))
const CLI = fileURLToPath(new URL('../platform/bin/trellis.js', import.meta.url))
const RATE_LIMIT = 150

interface Proc {
  name: string
  role: 'api' | 'worker'
  child: ChildProcess
  url: string
}

/** One request on a connection of its own (what a load balancer's new upstream connection is). */
function request(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: http.IncomingHttpHeaders }> {
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body)
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${base}${path}`,
      {
        method,
        agent: false,
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(payload ? { 'content-type': 'application/json' } : {}),
          ...opts.headers,
        },
        timeout: 20_000,
      },
      (res) => {
        let text = ''
        res.on('data', (c) => (text += c))
        res.on('end', () => {
          let body: any = text
          try {
            body = text ? JSON.parse(text) : null
          } catch {}
          resolve({ status: res.statusCode ?? 0, body, headers: res.headers })
        })
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.end(payload)
  })
}

const metric = (text: string, name: string, labels = ''): number => {
  let sum = 0
  for (const line of text.split('\n'))
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      if (!labels || line.includes(labels)) sum += Number(line.trim().split(/\s+/).pop())
  return sum
}

t.test(
  'two API and two worker processes on one database and Redis',
  { skip: !DB_KINDS.includes('postgres') && 'needs PostgreSQL (several processes)' },
  async (t) => {
    const db = await createTestDatabase()
    t.teardown(db.drop)
    const redisPort = await freePort()
    const redis = await startRedis(redisPort)
    t.teardown(() => stopProcess(redis))
    const base: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: db.url,
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      TRELLIS_SECRET_KEY: randomBytes(32).toString('hex'),
      LOG_LEVEL: 'error',
      TRELLIS_EGRESS_ALLOW: '127.0.0.1',
      TRELLIS_AUTH_RATE_LIMIT_PER_MINUTE: '100000',
      TRELLIS_WEBHOOK_RETRY_SCHEDULE: ['200ms', '400ms', ...Array(18).fill('1s')].join(','),
      TRELLIS_QUEUE_PREFIX: `trellis-so-${process.pid}`,
      TRELLIS_DRAIN_TIMEOUT: '15s',
      SCALE_TEST_RATE_LIMIT: String(RATE_LIMIT),
      // What the load balancer answers at: every process issues and accepts tokens for it.
      TRELLIS_PUBLIC_URL: 'https://trellis.scale.test',
    }
    // The migration job: once, before any process starts (the processes do not migrate).
    const setup = await createKernel({ config: loadConfig({ ...base, TRELLIS_ROLE: 'api', PORT: '0' }), migrate: true })
    await createPlatformAdmin(setup.ctx, { email: 'root@scale.test', password: 'platform-admin-password' })
    await setup.close()

    const procs: Proc[] = []
    const start = async (name: string, role: 'api' | 'worker'): Promise<Proc> => {
      const child = spawn(process.execPath, ['--no-node-snapshot', '--import', tsx, PROCESS], {
        env: { ...base, TRELLIS_ROLE: role, PORT: String(await freePort()) },
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      let out = ''
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout!.on('data', (d) => {
          out += d
          const m = /\{"url":"([^"]+)"/.exec(out)
          if (m) resolve(m[1]!)
        })
        child.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${out}`)))
      })
      child.removeAllListeners('exit')
      const p = { name, role, child, url }
      procs.push(p)
      return p
    }
    t.teardown(async () => {
      for (const p of procs) await stopProcess(p.child)
    })
    const [api1, api2, worker1, worker2] = await Promise.all([
      start('api1', 'api'),
      start('api2', 'api'),
      start('worker1', 'worker'),
      start('worker2', 'worker'),
    ])
    const exited = (p: Proc) =>
      new Promise<number | null>((r) =>
        p.child.exitCode !== null ? r(p.child.exitCode) : p.child.once('exit', (code) => r(code)),
      )

    const login = async (api: Proc, email: string, password: string) => {
      const r = await request(api.url, 'POST', '/v1/auth/login', { body: { email, password } })
      if (r.status !== 200) throw new Error(`login ${email}: ${r.status} ${JSON.stringify(r.body)}`)
      return r.body.accessToken as string
    }
    const admin = await login(api1, 'root@scale.test', 'platform-admin-password')
    const tenant = async (slug: string) => {
      const r = await request(api1.url, 'POST', '/v1/tenants', {
        token: admin,
        body: { name: slug, slug, admin: { email: `admin@${slug}.test`, name: slug, password: `password-of-${slug}` } },
      })
      t.equal(r.status, 201, `tenant ${slug} created`)
      return { id: r.body.id as string, token: await login(api1, `admin@${slug}.test`, `password-of-${slug}`) }
    }
    const owner = new pg.Client({ connectionString: db.url })
    await owner.connect()
    t.teardown(() => owner.end())

    t.test('a worker serves only health and metrics; readiness covers the database and Redis', async (t) => {
      t.equal((await request(worker1.url, 'GET', '/readyz')).status, 200)
      t.equal((await request(worker1.url, 'GET', '/v1/me', { token: admin })).status, 404, 'no API on a worker')
      t.equal((await request(api1.url, 'GET', '/readyz')).status, 200)
      t.match((await request(api2.url, 'GET', '/metrics')).body, /trellis_process_role\{role="api"\} 1/)
      t.match((await request(worker2.url, 'GET', '/metrics')).body, /trellis_process_role\{role="worker"\} 1/)
    })

    const rx = await startReceiver((_r) => 200)
    t.teardown(rx.close)

    await t.test(
      'events written through API 1 reach the receiver once per webhook-id, worker 1 SIGKILLed mid-batch',
      async (t) => {
        const a = await tenant('alpha')
        const ep = await request(api1.url, 'POST', '/v1/webhooks', {
          token: a.token,
          body: { url: rx.url, types: ['kernel.role.created'] },
        })
        t.equal(ep.status, 201)
        const N = 40
        const written: string[] = []
        let killed = false
        for (let i = 0; i < N; i++) {
          const r = await request(api1.url, 'POST', '/v1/roles', {
            token: a.token,
            body: { name: `r-${i}`, permissions: [] },
          })
          t.equal(r.status, 201)
          written.push(r.body.id)
          // Mid-batch: once deliveries are flowing, worker 1 dies with whatever it holds.
          if (!killed && rx.received.length >= 5) {
            killed = true
            await stopProcess(worker1.child)
          }
        }
        if (!killed) {
          await rx.until((all) => all.length >= 1, 30_000)
          await stopProcess(worker1.child)
        }
        const restarted = await start('worker1b', 'worker')
        t.ok(restarted.url)
        const ids = (all: typeof rx.received) => new Set(all.map((r) => r.headers['webhook-id'] as string))
        await rx.until((all) => ids(all).size >= N, 45_000)
        const byId = new Map<string, Set<string>>()
        for (const r of rx.received) {
          const set = byId.get(r.headers['webhook-id'] as string) ?? new Set<string>()
          set.add(r.body)
          byId.set(r.headers['webhook-id'] as string, set)
        }
        t.equal(byId.size, N, 'one webhook-id per event')
        t.ok(
          [...byId.values()].every((s) => s.size === 1),
          'a webhook-id seen twice (a redelivery after the kill) carries the same event',
        )
        const [{ n }] = (await owner.query('select count(*)::int as n from roles where name like $1', ['r-%'])).rows
        t.equal(n, N, 'each write made once')
      },
    )

    await t.test('a token from API 1 works on API 2; a sign-out on API 2 is refused on API 1 at once', async (t) => {
      const b = await tenant('beta')
      const token = await login(api1, 'admin@beta.test', 'password-of-beta')
      t.equal((await request(api2.url, 'GET', '/v1/me', { token })).status, 200)
      t.equal((await request(api2.url, 'POST', '/v1/auth/logout', { token })).status, 204)
      const after = await request(api1.url, 'GET', '/v1/me', { token })
      t.equal(after.status, 401, 'refused by the other process on the very next request')
      t.equal(after.body.code, 'AUTH_ERR_INVALID_TOKEN')
      t.ok(b.id)
    })

    await t.test("a tenant's rate limit holds across both API processes", async (t) => {
      const c = await tenant('gamma')
      const statuses: Array<{ api: string; status: number; remaining: number }> = []
      for (let i = 0; i < RATE_LIMIT + 20; i++) {
        const api = i % 2 ? api2 : api1
        const r = await request(api.url, 'GET', '/v1/me', { token: c.token })
        statuses.push({ api: api.name, status: r.status, remaining: Number(r.headers['x-ratelimit-remaining']) })
      }
      const ok = statuses.filter((s) => s.status === 200)
      t.ok(ok.length <= RATE_LIMIT, `at most the limit answered across both (${ok.length} of ${RATE_LIMIT})`)
      const refused = statuses.filter((s) => s.status === 429)
      t.ok(refused.length >= 20, `the rest refused (${refused.length})`)
      t.ok(refused.some((s) => s.api === 'api1') && refused.some((s) => s.api === 'api2'), 'refused by both')
      // One counter: what one process answered, the other counted.
      const first = statuses[0]!.remaining
      t.equal(statuses[1]!.remaining, first - 1, 'API 2 counts on from API 1')
    })

    const jobsRun = async (p: Proc) =>
      metric((await request(p.url, 'GET', '/metrics')).body as string, 'trellis_jobs_processed_total')
    await t.test('API processes ran no job; the workers ran them', async (t) => {
      t.equal(await jobsRun(api1), 0, 'API 1 processed no job')
      t.equal(await jobsRun(api2), 0, 'API 2 processed no job')
      const workers = (await jobsRun(worker2)) + (await jobsRun(procs.find((p) => p.name === 'worker1b')!))
      t.ok(workers > 0, `the live workers processed ${workers} jobs`)
    })

    let loadTenant: { id: string; token: string } | undefined
    await t.test('SIGTERM during load: no failed request, no lost or doubled job', async (t) => {
      const d = await tenant('delta')
      loadTenant = d
      const rx2 = await startReceiver(() => 200)
      t.teardown(rx2.close)
      const ep = await request(api2.url, 'POST', '/v1/webhooks', {
        token: d.token,
        body: { url: rx2.url, types: ['kernel.role.created'] },
      })
      t.equal(ep.status, 201)
      const failures: string[] = []
      const created: string[] = []
      let retriedElsewhere = 0
      const apis = [api1, api2]
      let stop = false
      // The load balancer: a new connection per request; a connection refused or reset before
      // any answer goes to the other process, with the same Idempotency-Key.
      const write = async (i: number, w: number) => {
        const key = randomUUID()
        for (let attempt = 0; attempt < 6; attempt++) {
          const api = apis[(i + w + attempt) % apis.length]!
          try {
            const r = await request(api.url, 'POST', '/v1/roles', {
              token: d.token,
              body: { name: `load-${w}-${i}`, permissions: [] },
              headers: { 'idempotency-key': key },
            })
            if (r.status === 201) created.push(r.body.id)
            else failures.push(`${api.name}: ${r.status} ${JSON.stringify(r.body)}`)
            return
          } catch {
            retriedElsewhere++
          }
        }
        failures.push(`load-${w}-${i}: no process answered`)
      }
      const writers = [0, 1, 2].map(async (w) => {
        for (let i = 0; !stop && i < 40; i++) await write(i, w)
      })
      await eventually(async () => created.length >= 15, 30_000)
      api1.child.kill('SIGTERM')
      worker2.child.kill('SIGTERM')
      t.equal(await exited(api1), 0, 'API 1 drained and exited')
      t.equal(await exited(worker2), 0, 'worker 2 drained and exited')
      await eventually(async () => created.length >= 45, 60_000)
      stop = true
      await Promise.all(writers)
      t.same(failures, [], 'no request failed')
      t.comment(`${created.length} writes, ${retriedElsewhere} connections refused and sent to API 2`)
      const names = (
        await owner.query('select name from roles where tenant_id = $1 and name like $2', [d.id, 'load-%'])
      ).rows
      t.equal(names.length, created.length, 'each write made once')
      const got = () => new Set(rx2.received.map((r) => r.headers['webhook-id']))
      await rx2.until(() => got().size >= created.length, 45_000)
      t.equal(got().size, created.length, 'every job done, by the worker left')
    })

    await t.test('trellis audit verify passes after interleaved writes through both APIs', async (t) => {
      const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
        const child = spawn(process.execPath, ['--no-node-snapshot', CLI, 'audit', 'verify'], {
          env: { ...base, TRELLIS_ROLE: 'all' },
          stdio: ['ignore', 'pipe', 'pipe'],
        })
        let text = ''
        child.stdout.on('data', (d) => (text += d))
        child.stderr.on('data', (d) => (text += d))
        child.on('exit', (code) => resolve({ code, text }))
      })
      t.equal(out.code, 0, out.text)
      t.notMatch(out.text, /BROKEN/)
      t.ok(loadTenant)
    })

    await t.test('after the load, API 2 still ran no job', async (t) => {
      t.equal(await jobsRun(api2), 0)
    })
  },
)
