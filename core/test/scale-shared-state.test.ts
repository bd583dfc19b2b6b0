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
