import t from 'tap'
import http from 'node:http'
import { randomBytes, randomUUID } from 'node:crypto'
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { createKernel } from '../core/src/kernel.js'
import { loadConfig } from '../core/src/config.js'
import { createPlatformAdmin } from '../core/src/bootstrap.js'
import { DB_KINDS, createTestDatabase } from '../core/test/helpers/test-kernel.js'
import { eventually, startReceiver } from '../core/test/helpers/receiver.js'
import { freePort, startRedis, stopProcess } from '../core/test/helpers/redis-server.js'
import { publishSigned, signingKeys } from './helpers/publish-flows.js'

// Two API and two worker processes (TRELLIS_ROLE) on one PostgreSQL database and one Redis
// (BullMQ), on loopback. What is shown is read from positive signals — the receiver's record,
// the database, each process's own /metrics — never from how long something took.

const LOADER = fileURLToPath(new URL('../scripts/ts-loader/register.mjs', import.meta.url))
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
  opts: { token?: string; body?: unknown; headers?: Record<string, string>; raw?: Buffer } = {},
): Promise<{ status: number; body: any; headers: http.IncomingHttpHeaders }> {
  const payload = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body))
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${base}${path}`,
      {
        method,
        agent: false,
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(payload && !opts.raw ? { 'content-type': 'application/json' } : {}),
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
      // Four kernel processes share two loaded cores here: a plugin's first step in a cold worker
      // may sit longer than the default second between statements (the idle guard has its own tests).
      TRELLIS_PLUGIN_TX_IDLE_MS: '10000',
      // What the load balancer answers at: every process issues and accepts tokens for it.
      TRELLIS_PUBLIC_URL: 'https://trellis.scale.test',
    }
    // The migration job: once, before any process starts (the processes do not migrate).
    const setup = await createKernel({ config: loadConfig({ ...base, TRELLIS_ROLE: 'api', PORT: '0' }), migrate: true })
    await createPlatformAdmin(setup.ctx, { email: 'root@scale.test', password: 'platform-admin-password' })
    await setup.close()

    const procs: Proc[] = []
    const start = async (name: string, role: 'api' | 'worker'): Promise<Proc> => {
      const child = spawn(process.execPath, ['--no-node-snapshot', '--import', LOADER, PROCESS], {
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

    // Published through the marketplace by a partner, checked by the workers, approved by the
    // platform: the flows fixture, used below by points 3, 5 and 6.
    let flowsVersion = ''
    await t.test('a version published through API 2 is checked once, by a worker', async (t) => {
      const partner = await request(api1.url, 'POST', '/v1/partners', {
        token: admin,
        body: {
          name: 'acme',
          slug: 'acme',
          admin: { email: 'admin@acme.test', name: 'acme', password: 'password-of-acme' },
        },
      })
      t.equal(partner.status, 201)
      const pt = await login(api1, 'admin@acme.test', 'password-of-acme')
      t.equal(
        (await request(api2.url, 'POST', '/v1/marketplace/scopes', { token: pt, body: { scope: '@acme' } })).status,
        201,
      )
      const keys = await signingKeys()
      const key = await request(api1.url, 'POST', '/v1/marketplace/keys', {
        token: pt,
        body: { name: 'ci', publicKey: keys.publicKeyPem },
      })
      t.equal(key.status, 201)
      const upload = await publishSigned(keys)
      const published = await request(api2.url, 'POST', '/v1/marketplace/plugins/@acme/flows/versions', {
        token: pt,
        raw: upload.payload,
        headers: { 'content-type': upload.contentType },
      })
      t.equal(published.status, 202, JSON.stringify(published.body))
      t.equal(published.body.status, 'checking', 'accepted; the checks that need the sandbox are left to the workers')
      flowsVersion = published.body.id
      const row = await eventually(async () => {
        const [v] = (
          await owner.query('select status, checks_attempts from plugin_versions where id = $1', [flowsVersion])
        ).rows
        return v.status !== 'checking' && v
      }, 30_000)
      t.equal(row.status, 'in_review', 'the checks passed')
      t.equal(row.checks_attempts, 1, 'claimed once')
      const [{ n }] = (
        await owner.query(
          `select count(*)::int as n from audit_log where action = 'marketplace.version.checked' and target_id = $1`,
          [flowsVersion],
        )
      ).rows
      t.equal(n, 1, 'one verdict recorded, though two workers look for versions to check')
      const approved = await request(api1.url, 'POST', `/v1/marketplace/versions/${flowsVersion}/approve`, {
        token: admin,
        body: { reason: 'checks pass; workflows only' },
      })
      t.equal(approved.status, 200, JSON.stringify(approved.body))
    })

    const e = await tenant('epsilon')
    const manifest = (
      await import('../core/test/fixtures/plugins/flows/trellis.plugin.json', { with: { type: 'json' } })
    ).default
    const member = async (email: string, role: string) => {
      const inv = await request(api1.url, 'POST', '/v1/invitations', { token: e.token, body: { email, role } })
      const acc = await request(api2.url, 'POST', '/v1/invitations/accept', {
        body: { token: inv.body.acceptToken, name: email, password: `password-of-${email}` },
      })
      if (acc.status !== 200) throw new Error(`accept ${email}: ${acc.status} ${JSON.stringify(acc.body)}`)
      return login(api1, email, `password-of-${email}`)
    }
    await t.test('installed in a tenant', async (t) => {
      const inst = await request(api1.url, 'POST', '/v1/installations', {
        token: e.token,
        body: { plugin: '@acme/flows', version: '1.0.0', capabilities: manifest.capabilities },
      })
      t.equal(inst.status, 201, JSON.stringify(inst.body))
      for (const role of ['pricing_manager', 'sales_director'])
        t.equal(
          (
            await request(api2.url, 'POST', '/v1/roles', {
              token: e.token,
              body: { name: role, permissions: ['users.read'] },
            })
          ).status,
          201,
        )
    })
    const pricing = await member('pricing@epsilon.test', 'pricing_manager')
    const director = await member('director@epsilon.test', 'sales_director')
    // What the workers did is watched in the database: the tenant's rate limit is for its requests.
    const until = (id: string, status: string) =>
      eventually(async () => {
        const [i] = (await owner.query('select status, output from workflow_instances where id = $1', [id])).rows
        return i?.status === status && i
      }, 30_000)
    const startFlow = (workflow: string, input: unknown) =>
      request(api1.url, 'POST', '/v1/workflows/instances', {
        token: e.token,
        body: { plugin: '@acme/flows', workflow, input },
      })
    /** The open task of an instance, once it exists, as its assignee's inbox on API 2 shows it. */
    const taskOf = async (token: string, instanceId: string, role: string) => {
      const why = async () => {
        const [i] = (
          await owner.query('select status, step, error from workflow_instances where id = $1', [instanceId])
        ).rows
        const steps = (
          await owner.query('select step, attempt, status, error from workflow_steps where instance_id = $1', [
            instanceId,
          ])
        ).rows
        return new Error(`no open ${role} task: ${JSON.stringify({ instance: i, steps })}`)
      }
      await eventually(async () => {
        const rows = (
          await owner.query(`select id from workflow_tasks where instance_id = $1 and role = $2 and status = 'open'`, [
            instanceId,
            role,
          ])
        ).rows
        return rows.length > 0
      }, 30_000).catch(async () => {
        throw await why()
      })
      return (await request(api2.url, 'GET', '/v1/tasks', { token })).body.items.find(
        (x: any) => x.instanceId === instanceId,
      )
    }
    /** Each step's completed runs: more than one for a step of one position would be a step run twice. */
    const stepsOf = async (instanceId: string) => {
      const rows = (
        await owner.query(
          `select seq, step, count(*)::int as n from workflow_steps where instance_id = $1 and status = 'completed' group by seq, step order by seq`,
          [instanceId],
        )
      ).rows as Array<{ seq: number; step: string; n: number }>
      return rows.map((r) => `${r.step}×${r.n}`)
    }

    await t.test('a task completed through API 2 advances an instance the workers step', async (t) => {
      const started = await startFlow('order', { orderId: 'SO-1', discount: 0.3 })
      t.equal(started.status, 201, JSON.stringify(started.body))
      const task = await taskOf(pricing, started.body.id, 'pricing_manager')
      t.equal(task.title, 'Approve a 30 % discount on SO-1', 'the pricing manager sees the task on API 2')
      const done = await request(api2.url, 'POST', `/v1/tasks/${task.id}/complete`, {
        token: pricing,
        body: { outcome: 'approve', data: { note: 'approved on API 2' } },
      })
      t.equal(done.status, 200, JSON.stringify(done.body))
      const finished = await until(started.body.id, 'completed')
      t.same(finished.output.confirmed, 'SO-1')
      t.same(await stepsOf(started.body.id), ['reserve×1', 'price×1', 'confirm×1'], 'each step ran once')
    })

    await t.test('timers and SLA escalations fire once', async (t) => {
      const nap = await startFlow('nap', { ms: 300 })
      const late = await startFlow('order', { orderId: 'SO-2', discount: 0.3, slaMs: 300 })
      const napped = await until(nap.body.id, 'completed')
      t.same(napped.output, { woke: true, dozed: 300 })
      t.same(await stepsOf(nap.body.id), ['doze×1', 'wake×1'], 'the timer woke the instance once')
      const escalated = await taskOf(director, late.body.id, 'sales_director')
      t.equal(escalated.role, 'sales_director')
      const completed = await request(api2.url, 'POST', `/v1/tasks/${escalated.id}/complete`, {
        token: director,
        body: { outcome: 'approve', data: { note: 'director says yes' } },
      })
      t.equal(completed.status, 200)
      await until(late.body.id, 'completed')
      const [{ n }] = (
        await owner.query(
          `select count(*)::int as n from events where type = 'workflow.task.escalated' and data->>'instanceId' = $1`,
          [late.body.id],
        )
      ).rows
      t.equal(n, 1, 'one escalation event, though two workers sweep for missed SLAs')
    })

    await t.test('the kill switch set through API 1 stops the plugin on API 2 within a second', async (t) => {
      const emit = () =>
        request(api2.url, 'POST', '/v1/x/flows/emit', {
          token: e.token,
          body: { type: 'flows.shipment.arrived', data: { orderId: 'none' } },
        })
      t.equal((await emit()).status, 202, 'API 2 serves the plugin (and holds its version)')
      const blocked = await request(api1.url, 'POST', `/v1/marketplace/versions/${flowsVersion}/block`, {
        token: admin,
        body: { reason: 'leaks data through its emit route' },
      })
      t.equal(blocked.status, 200, JSON.stringify(blocked.body))
      const at = Date.now()
      const refused = await eventually(async () => {
        const r = await emit()
        return r.status !== 202 && r
      }, 1000)
      t.equal(refused.body.code, 'PLG_ERR_VERSION_BLOCKED')
      t.comment(`refused on API 2 ${Date.now() - at} ms after API 1 answered the block`)
      const unblocked = await request(api1.url, 'POST', `/v1/marketplace/versions/${flowsVersion}/unblock`, {
        token: admin,
        body: {},
      })
      t.equal(unblocked.status, 200)
      t.ok(await eventually(async () => (await emit()).status === 202, 1000), 'unblocked, it serves again')
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
