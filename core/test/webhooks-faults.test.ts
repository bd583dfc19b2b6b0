import t from 'tap'
import { randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import pg from 'pg'
import { fileURLToPath } from 'node:url'
import { createKernel, type Kernel } from '../src/kernel.js'
import { loadConfig } from '../src/config.js'
import { createPlatformAdmin } from '../src/bootstrap.js'
import { BullMqJobQueue } from '../src/events/bullmq-queue.js'
import { DB_KINDS, startTestKernel, createTenantWithAdmin, createTestDatabase } from './helpers/test-kernel.js'
import { startReceiver } from './helpers/receiver.js'
import { freePort, startRedis, stopProcess } from './helpers/redis-server.js'

// Faults: nothing emitted is lost, because the outbox (PostgreSQL) is the source of truth.

const stop = stopProcess

for (const kind of DB_KINDS) {
  t.test(`redis restarted mid-stream on ${kind}: every event still delivered once it is back`, async (t) => {
    const port = await freePort()
    let redis = await startRedis(port)
    t.teardown(() => stop(redis))
    const queue = new BullMqJobQueue(`redis://127.0.0.1:${port}`, 'faults', `trellis-faults-${process.pid}`)
    const k = await startTestKernel(t, kind, {
      events: {
        queue,
        egressAllow: ['127.0.0.1'],
        sweepMs: 200,
        staleMs: 1000,
        retryScheduleMs: [100, 200, 400, 800, 1600],
      },
    })
    const a = await createTenantWithAdmin(k, `rf-${kind}`)
    const rx = await startReceiver()
    t.teardown(rx.close)
    const ep = await k.req('POST', '/v1/webhooks', {
      token: a.token,
      body: { url: rx.url, types: ['kernel.role.created'] },
    })
    t.equal(ep.status, 201)
    const roleIds: string[] = []
    const emit = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const r = await k.req('POST', '/v1/roles', {
          token: a.token,
          body: { name: `rr-${roleIds.length}`, permissions: [] },
        })
        t.equal(r.status, 201)
        roleIds.push(r.body.id)
      }
    }
    await emit(10)
    await rx.until((all) => all.length >= 3)
    await stop(redis)
    await emit(10) // committed while Redis is down: they wait in the outbox
    t.ok(rx.received.length < 20)
    redis = await startRedis(port) // a fresh, empty Redis: every queued job is gone
    const got = await rx.until((all) => new Set(all.map((r) => JSON.parse(r.body).data.roleId)).size >= 20, 30_000)
    const delivered = new Set(got.map((r) => JSON.parse(r.body).data.roleId))
    t.same([...delivered].sort(), [...roleIds].sort(), 'every event delivered')
    const ids = new Map<string, string>()
    for (const r of got) {
      const body = JSON.parse(r.body)
      if (ids.has(body.data.roleId))
        t.equal(ids.get(body.data.roleId), r.headers['webhook-id'], 'a duplicate carries the same webhook-id')
      ids.set(body.data.roleId, r.headers['webhook-id'] as string)
    }
  })
}

t.test(
  'the kernel process killed between commit and dispatch: delivered after restart',
  { skip: !DB_KINDS.includes('postgres') && 'needs PostgreSQL (a second process)' },
  async (t) => {
    const db = await createTestDatabase()
    t.teardown(db.drop)
    const env = {
      DATABASE_URL: db.url,
      TRELLIS_SECRET_KEY: randomBytes(32).toString('hex'),
      LOG_LEVEL: 'silent',
      PORT: '0',
      TRELLIS_EGRESS_ALLOW: '127.0.0.1',
    }
    const rx = await startReceiver()
    t.teardown(rx.close)
    const boot = async (): Promise<Kernel> =>
      createKernel({ config: loadConfig(env), migrate: true, events: { sweepMs: 200, staleMs: 1000 } })
    let k = await boot()
    await createPlatformAdmin(k.ctx, { email: 'root@crash.test', password: 'platform-admin-password' })
    const inject = async (method: string, url: string, token?: string, payload?: unknown) => {
      const r = await k.app.inject({
        method: method as 'POST',
        url,
        headers: token ? { authorization: `Bearer ${token}` } : {},
        payload: payload as object,
      })
      return { status: r.statusCode, body: JSON.parse(r.body || 'null') }
    }
    const admin = (
      await inject('POST', '/v1/auth/login', undefined, {
        email: 'root@crash.test',
        password: 'platform-admin-password',
      })
    ).body.accessToken
    await inject('POST', '/v1/tenants', admin, {
      name: 'crash',
      slug: 'crash',
      admin: { email: 'a@crash.test', name: 'a', password: 'password-of-crash' },
    })
    const token = (
      await inject('POST', '/v1/auth/login', undefined, { email: 'a@crash.test', password: 'password-of-crash' })
    ).body.accessToken
    t.equal((await inject('POST', '/v1/webhooks', token, { url: rx.url, types: ['kernel.role.created'] })).status, 201)
    await k.close()

    const loader = fileURLToPath(new URL('../../scripts/ts-loader/register.mjs', import.meta.url))
    const child = spawn(
      process.execPath,
      ['--no-node-snapshot', '--import', loader, fileURLToPath(new URL('./helpers/emit-and-die.ts', import.meta.url))],
      { env: { ...process.env, ...env, TOKEN: token }, stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let out = ''
    child.stdout!.on('data', (d) => (out += d))
    const signal = await new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, sig) => r(sig)))
    t.equal(signal, 'SIGKILL', `the child died by SIGKILL ${out}`)

    const c = new pg.Client({ connectionString: db.url })
    await c.connect()
    const { rows } = await c.query(`select dispatched_at from events where type = 'kernel.role.created'`)
    await c.end()
    t.equal(rows.length, 1, 'the change and its event were committed')
    t.equal(rows[0].dispatched_at, null, 'the event never reached the queue')
    k = await boot()
    t.teardown(() => k.close())
    const [got] = await rx.until((all) => all.length >= 1)
    t.match(JSON.parse(got!.body), { type: 'kernel.role.created', data: { name: 'made-before-the-crash' } })
  },
)
