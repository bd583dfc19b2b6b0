import t from 'tap'
import http from 'node:http'
import { randomBytes } from 'node:crypto'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { Webhook } from 'standardwebhooks'
import { createKernel } from '../src/kernel.js'
import { loadConfig } from '../src/config.js'
import { createPlatformAdmin } from '../src/bootstrap.js'
import { DB_KINDS, createTestDatabase } from './helpers/test-kernel.js'
import { eventually } from './helpers/receiver.js'
import { freePort, startRedis, stopProcess } from './helpers/redis-server.js'

// Faults injected into a stream of writes, on both queues: the receiver refuses connections,
// Redis is killed and restarted empty, the kernel is SIGKILLed and restarted, the receiver
// answers 503 and then recovers. From the client's own record of its 2xx writes: nothing is
// lost, duplicates carry the same event id, each endpoint gets each subject's events in order,
// every signature verifies, and the audit chain still verifies.

const LOADER = fileURLToPath(new URL('../../scripts/ts-loader/register.mjs', import.meta.url))
const CLI = fileURLToPath(new URL('../../platform/bin/trellis.js', import.meta.url))
const KERNEL = fileURLToPath(new URL('./helpers/kernel-process.ts', import.meta.url))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Got {
  path: string
  headers: http.IncomingHttpHeaders
  body: string
  status: number
}

/** A receiver on a fixed port that can refuse connections, fail with 503, or accept. */
async function faultyReceiver() {
  const port = await freePort()
  const got: Got[] = []
  let mode: 'ok' | '503' = 'ok'
  let server: http.Server | undefined
  const open = async () => {
    server = http.createServer((req, res) => {
      let body = ''
      req.on('data', (c) => (body += c))
      req.on('end', () => {
        const status = mode === 'ok' ? 200 : 503
        got.push({ path: req.url ?? '', headers: req.headers, body, status })
        res.writeHead(status).end()
      })
    })
    await new Promise<void>((r) => server!.listen(port, '127.0.0.1', r))
  }
  const refuse = () =>
    new Promise<void>((r) => {
      server!.closeAllConnections()
      server!.close(() => r())
    })
  await open()
  return {
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    got,
    refuse,
    async fail() {
      mode = '503'
      await open()
    },
    recover() {
      mode = 'ok'
    },
    close: () => (server?.listening ? refuse() : Promise.resolve()),
  }
}

for (const queue of ['postgres', 'bullmq'] as const) {
  t.test(
    `faults injected on the ${queue} queue: nothing lost, in order per subject per endpoint`,
    { skip: !DB_KINDS.includes('postgres') && 'needs PostgreSQL (a second process)' },
    async (t) => {
      const db = await createTestDatabase()
      t.teardown(db.drop)
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        DATABASE_URL: db.url,
        TRELLIS_SECRET_KEY: randomBytes(32).toString('hex'),
        LOG_LEVEL: 'warn',
        PORT: String(await freePort()),
        TRELLIS_EGRESS_ALLOW: '127.0.0.1',
        TRELLIS_AUTH_RATE_LIMIT_PER_MINUTE: '100000',
        TRELLIS_RATE_LIMIT_PER_MINUTE: '100000',
        // About 35 s of retries: longer than the faults last, so nothing is dead-lettered.
        TRELLIS_WEBHOOK_RETRY_SCHEDULE: ['200ms', '400ms', ...Array(18).fill('2s')].join(','),
        TRELLIS_QUEUE_PREFIX: `trellis-fi-${process.pid}`,
      }
      delete env.REDIS_URL
      let redis: ChildProcess | undefined
      if (queue === 'bullmq') {
        const port = await freePort()
        redis = await startRedis(port)
        env.REDIS_URL = `redis://127.0.0.1:${port}`
      }
      t.teardown(async () => redis && stopProcess(redis))

      const setup = await createKernel({ config: loadConfig(env), migrate: true })
      await createPlatformAdmin(setup.ctx, { email: 'root@faults.test', password: 'platform-admin-password' })
      await setup.close()

      let kernel: ChildProcess | undefined
      let base = ''
      const boot = async () => {
        const child = spawn(process.execPath, ['--no-node-snapshot', '--import', LOADER, KERNEL], {
          env,
          stdio: ['ignore', 'pipe', 'inherit'],
        })
        let out = ''
        base = await new Promise<string>((resolve, reject) => {
          child.stdout!.on('data', (d) => {
            out += d
            const m = /\{"url":"([^"]+)"\}/.exec(out)
            if (m) resolve(m[1]!)
          })
          child.once('exit', (code) => reject(new Error(`the kernel exited with ${code}: ${out}`)))
        })
        child.removeAllListeners('exit')
        kernel = child
      }
      await boot()
      t.teardown(async () => kernel && stopProcess(kernel))

      const call = async (method: string, path: string, token?: string, body?: unknown) => {
        const r = await fetch(`${base}${path}`, {
          method,
          headers: {
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(body ? { 'content-type': 'application/json' } : {}),
          },
          body: body ? JSON.stringify(body) : undefined,
          signal: AbortSignal.timeout(10_000),
        })
        const text = await r.text()
        return { status: r.status, body: text ? JSON.parse(text) : null }
      }
      const login = async (email: string, password: string) =>
        (await call('POST', '/v1/auth/login', undefined, { email, password })).body.accessToken as string
      const admin = await login('root@faults.test', 'platform-admin-password')
      const rx = await faultyReceiver()
      t.teardown(rx.close)

      // Two tenants; three receiving endpoints (two for the first tenant); per tenant two more
      // endpoints whose changes are the subjects written to again and again.
      const secrets = new Map<string, string>()
      const tenants: Array<{ name: string; token: string; receivers: string[]; subjects: string[] }> = []
      for (const [name, paths] of [
        ['alpha', ['/a1', '/a2']],
        ['beta', ['/b1']],
      ] as const) {
        const created = await call('POST', '/v1/tenants', admin, {
          name,
          slug: `fi-${name}`,
          admin: { email: `admin@${name}.test`, name, password: `password-of-${name}` },
        })
        t.equal(created.status, 201)
        const token = await login(`admin@${name}.test`, `password-of-${name}`)
        for (const p of paths) {
          const ep = await call('POST', '/v1/webhooks', token, {
            url: rx.url(p),
            types: ['kernel.role.*', 'kernel.webhook.created', 'kernel.webhook.updated'],
          })
          t.equal(ep.status, 201)
          secrets.set(p, ep.body.secret)
        }
        const subjects: string[] = []
        for (let i = 0; i < 2; i++)
          subjects.push(
            (await call('POST', '/v1/webhooks', token, { url: rx.url('/unused'), types: ['test.never.sent'] })).body.id,
          )
        tenants.push({ name, token, receivers: [...paths], subjects })
      }

      // The client's own record of what it wrote and was answered 2xx.
      const roles: Array<{ tenant: string; roleId: string; deleted: boolean }> = []
      const patched = new Map<string, number>()
      let written = 0
      let stop = false
      const writer = async (tn: (typeof tenants)[number]) => {
        for (let i = 0; !stop; i++) {
          try {
            const subject = tn.subjects[i % 2]!
            const r = await call('PATCH', `/v1/webhooks/${subject}`, tn.token, { description: `write ${i}` })
            if (r.status === 200) {
              patched.set(subject, (patched.get(subject) ?? 0) + 1)
              written++
            }
            if (i % 3 === 0) {
              const role = await call('POST', '/v1/roles', tn.token, { name: `${tn.name}-${i}`, permissions: [] })
              if (role.status === 201) {
                const entry = { tenant: tn.name, roleId: role.body.id as string, deleted: false }
                roles.push(entry)
                written++
                if ((await call('DELETE', `/v1/roles/${entry.roleId}`, tn.token)).status === 204) entry.deleted = true
              }
            }
          } catch {
            await sleep(100) // the kernel is down: try again
          }
        }
      }
      const writers = Promise.all(tenants.map(writer))
      const more = async (n: number) => {
        const target = written + n
        await eventually(async () => written >= target, 60_000)
      }

      await eventually(async () => rx.got.length >= 15, 30_000)
      await rx.refuse()
      await more(15)
      if (redis) {
        await stopProcess(redis)
        await more(10)
        redis = await startRedis(Number(new URL(env.REDIS_URL!).port)) // empty: every queued job is gone
      }
      await stopProcess(kernel!) // SIGKILL, mid-stream
      await boot()
      await more(10)
      const before503 = rx.got.length
      await rx.fail()
      await eventually(async () => rx.got.length >= before503 + 10, 30_000)
      rx.recover()
      await more(10)
      stop = true
      await writers

      // What the database holds, for the subjects the client wrote.
      const c = new pg.Client({ connectionString: db.url })
      await c.connect()
      t.teardown(() => c.end())
      const subjectsOf = (tn: (typeof tenants)[number]) => [
        ...tn.subjects.map((s) => `webhook/${s}`),
        ...roles.filter((r) => r.tenant === tn.name).map((r) => `role/${r.roleId}`),
      ]
      const delivered = (path: string) =>
        rx.got.filter((g) => g.path === path && g.status === 200).map((g) => JSON.parse(g.body))
      await eventually(async () => {
        for (const tn of tenants) {
          const { rows } = await c.query(
            `select count(*)::int as n from events e join tenants x on x.id = e.tenant_id where x.slug = $1 and e.subject = any($2::text[])`,
            [`fi-${tn.name}`, subjectsOf(tn)],
          )
          for (const p of tn.receivers)
            if (
              new Set(
                delivered(p)
                  .filter((b) => subjectsOf(tn).includes(b.subject))
                  .map((b) => b.id),
              ).size < rows[0].n
            )
              return false
        }
        return true
      }, 60_000)

      for (const tn of tenants) {
        for (const p of tn.receivers) {
          const ok = delivered(p)
          // Nothing lost, from the client's record.
          for (const r of roles.filter((x) => x.tenant === tn.name)) {
            t.ok(
              ok.some((b) => b.type === 'kernel.role.created' && b.data.roleId === r.roleId),
              `${p}: role ${r.roleId} created`,
            )
            if (r.deleted)
              t.ok(
                ok.some((b) => b.type === 'kernel.role.deleted' && b.data.roleId === r.roleId),
                `${p}: role ${r.roleId} deleted`,
              )
          }
          for (const s of tn.subjects) {
            const updates = new Set(
              ok.filter((b) => b.subject === `webhook/${s}` && b.type === 'kernel.webhook.updated').map((b) => b.id),
            )
            t.ok(
              updates.size >= (patched.get(s) ?? 0),
              `${p}: every acknowledged change of webhook/${s} (${patched.get(s)}) arrived (${updates.size})`,
            )
          }
          // Duplicates only with the same event id: one body per id, and the header is the body's id.
          const all = rx.got.filter((g) => g.path === p)
          const byId = new Map<string, string>()
          let sameBody = true
          let headerIsId = true
          let verified = 0
          for (const g of all) {
            const body = JSON.parse(g.body)
            const stable = JSON.stringify({ ...body, timestamp: undefined })
            if (byId.has(body.id) && byId.get(body.id) !== stable) sameBody = false
            byId.set(body.id, stable)
            if (g.headers['webhook-id'] !== body.id) headerIsId = false
            new Webhook(secrets.get(p)!).verify(g.body, g.headers as Record<string, string>)
            verified++
          }
          t.ok(sameBody, `${p}: every copy of an event id is the same event`)
          t.ok(headerIsId, `${p}: webhook-id is the event id`)
          t.equal(verified, all.length, `${p}: ${verified} signatures verified`)
          const perWrite = new Map<string, Set<string>>()
          for (const b of ok.filter((x) => x.type.startsWith('kernel.role.'))) {
            const key = `${b.type} ${b.data.roleId}`
            perWrite.set(key, (perWrite.get(key) ?? new Set()).add(b.id))
          }
          t.ok(
            [...perWrite.values()].every((ids) => ids.size === 1),
            `${p}: no write became two events`,
          )
          // In order per subject: each request is the event after the last one accepted, or a resend of that one.
          const last = new Map<string, { seq: number; id: string }>()
          const violations: string[] = []
          for (const g of all) {
            const b = JSON.parse(g.body)
            if (!subjectsOf(tn).includes(b.subject)) continue
            const prev = last.get(b.subject) ?? { seq: 0, id: '' }
            if (b.sequence === prev.seq + 1) {
              if (g.status === 200) last.set(b.subject, { seq: b.sequence, id: b.id })
            } else if (!(b.sequence === prev.seq && b.id === prev.id))
              violations.push(`${b.subject}: #${b.sequence} after #${prev.seq}`)
          }
          t.same(violations, [], `${p}: in order per subject, without a gap`)
        }
      }

      stop = true
      await new Promise<void>((r) => {
        kernel!.once('exit', () => r())
        kernel!.kill('SIGTERM')
      })
      kernel = undefined
      const verify = spawnSync(process.execPath, [CLI, 'audit', 'verify'], { env, encoding: 'utf8', timeout: 120_000 })
      t.equal(verify.status, 0, `trellis audit verify: ${verify.stdout}${verify.stderr}`)
    },
  )
}
