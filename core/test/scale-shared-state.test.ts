import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { loadConfig } from '../src/config.js'
import Fastify from 'fastify'
import type { Api } from '../src/http/types.js'
import { registerHealthRoutes } from '../src/http/health-routes.js'
import { HttpMetrics } from '../src/observability/metrics.js'
import { sendProblem, toTrellisError } from '../src/http/problem.js'
import { eventually } from './helpers/receiver.js'
import { MemoryState, RedisState } from '../src/scale/shared-state.js'
import { SessionRevocations } from '../src/scale/session-revocations.js'
import { installFakeTimers } from './helpers/fake-timers.js'
import { freePort, startRedis, stopProcess } from './helpers/redis-server.js'
import { createKernel } from '../src/kernel.js'
import { DB_KINDS, REDIS_URL, createTenantWithAdmin, startTestKernel, type TestKernel } from './helpers/test-kernel.js'
import { startSmtpServer } from './helpers/smtp-server.js'
import { BullMqJobQueue } from '../src/events/bullmq-queue.js'

// The state processes share (docs/adr/0036-process-roles-and-shared-state.md): its in-memory
// version for the embedded default and its Redis version, entries that expire, the roles'
// configuration, and readiness following Redis.

const tmp = `/tmp/trellis-scale-${process.pid}`

t.test('roles, trustProxy and the drain deadline are configured and checked', async (t) => {
  const base = { TRELLIS_DATA_DIR: tmp }
  t.equal(loadConfig(base).role, 'all', 'all is the embedded default')
  t.throws(() => loadConfig({ ...base, TRELLIS_ROLE: 'web' }), /TRELLIS_ROLE/)
  t.throws(() => loadConfig({ ...base, TRELLIS_ROLE: 'api' }), /TRELLIS_ROLE.*DATABASE_URL/, 'a role needs PostgreSQL')
  const pgEnv = { ...base, DATABASE_URL: 'postgres://k@db/t', TRELLIS_SECRET_KEY: randomBytes(32).toString('hex') }
  t.throws(() => loadConfig({ ...pgEnv, TRELLIS_ROLE: 'worker' }), /TRELLIS_PUBLIC_URL/, 'and one public URL')
  const c = loadConfig({ ...pgEnv, TRELLIS_ROLE: 'worker', TRELLIS_PUBLIC_URL: 'https://t.example' })
  t.equal(c.role, 'worker')
  t.equal(c.trustProxy, false, 'no proxy is trusted unless configured')
  t.equal(c.drainTimeoutMs, 25_000)
  t.equal(loadConfig({ ...base, TRELLIS_TRUST_PROXY: 'true' }).trustProxy, true)
  t.equal(loadConfig({ ...base, TRELLIS_TRUST_PROXY: '2' }).trustProxy, 2)
  t.same(loadConfig({ ...base, TRELLIS_TRUST_PROXY: '10.0.0.0/8, loopback' }).trustProxy, ['10.0.0.0/8', 'loopback'])
  t.throws(() => loadConfig({ ...base, TRELLIS_TRUST_PROXY: 'proxy.example' }), /TRELLIS_TRUST_PROXY/)
  t.equal(loadConfig({ ...base, TRELLIS_DRAIN_TIMEOUT: '5s' }).drainTimeoutMs, 5000)
})

t.test('in memory: windows count and reset, flags and revoked sessions expire', async (t) => {
  const clock = installFakeTimers()
  t.teardown(clock.restore)
  const s = new MemoryState()
  t.same(await s.hit('org:a', 1000), { count: 1, resetMs: 1000 })
  t.same(await s.hit('org:a', 1000), { count: 2, resetMs: 1000 })
  await clock.advance(1000)
  t.equal((await s.hit('org:a', 1000)).count, 1, 'a new window')
  const revoked = new SessionRevocations(s, 60_000)
  t.equal(revoked.shared, false, 'one process: its own memory decides')
  await revoked.add('family-1')
  t.ok(revoked.has('family-1'))
  t.ok(await revoked.isRevoked('family-1'))
  await clock.advance(60_000)
  t.notOk(revoked.has('family-1'), 'gone once no access token of it can be unexpired')
  t.equal(revoked.size, 0)
  const heard: string[] = []
  s.subscribe('c', (m) => heard.push(m))
  await s.publish('c', 'x')
  t.same(heard, ['x'])
})

t.test('on Redis: one window and one revocation list for every process, with expiry', async (t) => {
  const port = await freePort()
  const redis = await startRedis(port)
  t.teardown(() => stopProcess(redis))
  const url = `redis://127.0.0.1:${port}`
  const a = new RedisState(url, 'p')
  const b = new RedisState(url, 'p')
  t.teardown(async () => {
    await a.close()
    await b.close()
  })
  t.equal((await a.hit('org:x', 60_000)).count, 1)
  t.equal((await b.hit('org:x', 60_000)).count, 2, 'the other process counts on')
  const ra = new SessionRevocations(a, 60_000)
  const rb = new SessionRevocations(b, 60_000)
  t.ok(rb.shared)
  await ra.add('fam')
  t.notOk(rb.has('fam'), 'the other process did not see it in its memory…')
  t.ok(await rb.isRevoked('fam'), '…but refuses it, asking Redis')
  const direct = new Redis(url)
  t.teardown(() => direct.disconnect())
  const ttl = await direct.pttl('p:state:flag:revoked:fam')
  t.ok(ttl > 0 && ttl <= 60_000, `the entry expires (${ttl} ms left)`)
  t.ok((await direct.pttl('p:state:rl:org:x')) > 0, 'so does the window')
  const heard: string[] = []
  b.subscribe('versions', (m) => heard.push(m))
  await b.ready()
  await a.publish('versions', 'v1,v2')
  await new Promise<void>((resolve) => {
    const check = () => (heard.length ? resolve() : setImmediate(check))
    check()
  })
  t.same(heard, ['v1,v2'], 'a broadcast reaches the other process')
})

t.test('readiness: 503 KRN_ERR_REDIS_UNAVAILABLE while Redis is away, KRN_ERR_DRAINING while draining', async (t) => {
  const port = await freePort()
  const redis = await startRedis(port)
  t.teardown(() => stopProcess(redis))
  const shared = new RedisState(`redis://127.0.0.1:${port}`, 'p')
  t.teardown(() => shared.close())
  let draining = false
  const app = Fastify() as unknown as Api
  app.setErrorHandler((err, request, reply) => sendProblem(request, reply, toTrellisError(err)))
  registerHealthRoutes(app, {
    db: { ping: async () => true, pendingMigrations: async () => [] },
    keys: { jwks: async () => ({ keys: [] }) } as never,
    metrics: new HttpMetrics(),
    shared,
    draining: () => draining,
  })
  t.teardown(() => app.close())
  const readyz = () => app.inject({ method: 'GET', url: '/readyz' })
  t.equal((await readyz()).statusCode, 200)
  await stopProcess(redis)
  const down = await readyz()
  t.equal(down.statusCode, 503)
  t.equal(down.json().code, 'KRN_ERR_REDIS_UNAVAILABLE')
  const again = await startRedis(port)
  t.teardown(() => stopProcess(again))
  t.ok(await eventually(async () => (await readyz()).statusCode === 200, 30_000), 'ready again once Redis answers')
  draining = true
  const drain = await readyz()
  t.equal(drain.statusCode, 503)
  t.equal(drain.json().code, 'KRN_ERR_DRAINING')
})

t.test('a BullMQ queue closes after Redis restarted, and while Redis is away', async (t) => {
  const closes = (q: BullMqJobQueue) =>
    Promise.race([
      q.close().then(() => 'closed'),
      new Promise<string>((r) => setTimeout(() => r('still closing after 10 s'), 10_000).unref()),
    ])
  for (const restarted of [true, false]) {
    const port = await freePort()
    let redis = await startRedis(port)
    t.teardown(() => stopProcess(redis))
    const q = new BullMqJobQueue(`redis://127.0.0.1:${port}`, 'close-probe', `close-${process.pid}`)
    const ran: string[] = []
    q.work(async (job) => {
      ran.push(job.id)
    })
    await q.add([{ id: 'first', name: 'x', data: { tenantId: 't' } }])
    await eventually(async () => ran.length === 1)
    await stopProcess(redis)
    if (restarted) {
      redis = await startRedis(port)
      // Accepted once the queue has reconnected (adding fails fast while it has not).
      await eventually(() =>
        q.add([{ id: 'second', name: 'x', data: { tenantId: 't' } }]).then(
          () => true,
          () => false,
        ),
      )
      await eventually(async () => ran.length === 2, 30_000)
      t.equal(await closes(q), 'closed', 'after a restart')
    } else {
      // The queue has seen Redis go: adding is refused at once (the outbox keeps such events).
      await eventually(() =>
        q.add([{ id: 'refused', name: 'x', data: { tenantId: 't' } }]).then(
          () => false,
          () => true,
        ),
      )
      t.equal(await closes(q), 'closed', 'while Redis is away: running jobs are handed back, not waited for')
    }
  }
})

t.test(
  'two kernels on one database and Redis: sign-in attempts, route limits, reset mails and model blocks are one',
  { skip: !DB_KINDS.includes('postgres') && 'needs PostgreSQL (two kernels on one database)' },
  async (t) => {
    const smtp = await startSmtpServer()
    t.teardown(smtp.close)
    const secret = randomBytes(32).toString('hex')
    const env = {
      TRELLIS_SECRET_KEY: secret,
      TRELLIS_AUTH_RATE_LIMIT_PER_MINUTE: '40',
      TRELLIS_SMTP_URL: smtp.url,
      TRELLIS_MAIL_FROM: 'Trellis <no-reply@trellis.test>',
      TRELLIS_MAIL_LINK_URL: 'https://console.trellis.test',
    }
    const loginLimits = { perAccount: 3, perIp: 1000, windowMs: 60_000 }
    // The model list is kept for a minute here: only the fan-out can make B see a block at once.
    const ai = { registryTtlMs: 60_000 }
    const a = await startTestKernel(t, { db: 'postgres', queue: 'bullmq', name: 'a' }, { env, loginLimits, ai })
    const kernelB = await createKernel({
      config: loadConfig({
        LOG_LEVEL: 'silent',
        PORT: '0',
        TRELLIS_DATA_DIR: tmp,
        DATABASE_URL: a.databaseUrl,
        REDIS_URL,
        TRELLIS_QUEUE_PREFIX: a.redisPrefix,
        ...env,
      }),
      migrate: false,
      loginLimits,
      ai,
    })
    t.teardown(() => kernelB.close())
    const b: Pick<TestKernel, 'req'> = {
      req: async (method, url, opts = {}) => {
        const res = await kernelB.app.inject({
          method: method as 'GET',
          url,
          headers: {
            ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
            ...(opts.body ? { 'content-type': 'application/json' } : {}),
          },
          payload: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        })
        return { status: res.statusCode, body: res.body ? res.json() : null, headers: res.headers }
      },
    }
    const tenant = await createTenantWithAdmin(a, 'shared-limits')
    const login = (k: Pick<TestKernel, 'req'>, password: string) =>
      k.req('POST', '/v1/auth/login', { body: { email: tenant.email, password } })

    await t.test('failed sign-ins on either process count against one limit', async (t) => {
      t.equal((await login(a, 'wrong-1')).body.code, 'AUTH_ERR_INVALID_CREDENTIALS')
      t.equal((await login(b, 'wrong-2')).body.code, 'AUTH_ERR_INVALID_CREDENTIALS')
      t.equal((await login(a, 'wrong-3')).body.code, 'AUTH_ERR_INVALID_CREDENTIALS')
      const refused = await login(b, tenant.password)
      t.equal(refused.status, 429, 'the third failure was on the other process, yet B refuses even the right password')
      t.equal(refused.body.code, 'AUTH_ERR_LOGIN_RATE_LIMITED')
      t.equal((await login(a, tenant.password)).body.code, 'AUTH_ERR_LOGIN_RATE_LIMITED', 'and so does A')
    })

    await t.test("a route's own limit counts requests on both processes", async (t) => {
      const statuses: number[] = []
      for (let i = 0; i < 44; i++) {
        const r = await (i % 2 ? b : a).req('POST', '/v1/auth/refresh', { body: { refreshToken: `x${i}` } })
        statuses.push(r.status)
        if (r.status === 429) t.equal(r.body.code, 'KRN_ERR_RATE_LIMITED')
      }
      t.equal(statuses.filter((s) => s !== 429).length, 40, 'the limit of 40 once, not once per process')
      t.same(statuses.slice(40), [429, 429, 429, 429], 'then refused by both')
    })

    await t.test('password reset mails: three per address across both processes', async (t) => {
      const email = 'nobody-in-particular@shared-limits.test'
      const answers: number[] = []
      for (const k of [a, b, a, b])
        answers.push((await k.req('POST', '/v1/auth/password/forgot', { body: { email } })).status)
      t.same(answers.slice(0, 3), [202, 202, 202])
      t.equal(answers[3], 429, 'the fourth, on the other process, is refused')
    })

    await t.test('a model blocked through A is refused by B at once', async (t) => {
      const complete = (k: Pick<TestKernel, 'req'>) =>
        k.req('POST', '/v1/ai/complete', {
          token: tenant.token,
          body: { messages: [{ role: 'user', content: 'Who approves orders?' }] },
        })
      t.equal((await complete(b)).status, 200, 'B has read (and keeps) the model list')
      const models = await a.req('GET', '/v1/ai/models', { token: a.adminToken })
      const local = models.body.items.find((m: { alias: string }) => m.alias === 'local-extractive')
      t.teardown(() => a.req('POST', `/v1/ai/models/${local.id}/approve`, { token: a.adminToken, body: {} }))
      const blocked = await a.req('POST', `/v1/ai/models/${local.id}/block`, {
        token: a.adminToken,
        body: { reason: 'answers leaked' },
      })
      t.equal(blocked.status, 200)
      const refused = await eventually(async () => {
        const r = await complete(b)
        return r.body?.code === 'AI_ERR_MODEL_BLOCKED' && r
      }, 1000)
      t.ok(refused, 'B refuses within a second, long before its one-minute copy would expire')
      await a.req('POST', `/v1/ai/models/${local.id}/approve`, { token: a.adminToken, body: {} })
      t.ok(await eventually(async () => (await complete(b)).status === 200, 1000), 'and serves it again once approved')
    })
  },
)
