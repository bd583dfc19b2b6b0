import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { createKernel, type Kernel, type KernelOptions } from '../../src/kernel.js'
import { loadConfig } from '../../src/config.js'
import { createPlatformAdmin } from '../../src/bootstrap.js'
import type { Tx } from '../../src/db/database.js'
import { embeddedTemplate } from '../../src/db/embedded-template.js'
import { createFromTemplate, pgTemplate } from './pg-template.js'

export type DbKind = 'postgres' | 'pglite'

/** Every integration suite runs on both: real PostgreSQL and the embedded PGlite default. */
export const DB_KINDS: DbKind[] = (process.env.TRELLIS_TEST_DBS ?? 'postgres,pglite').split(',') as DbKind[]

export type QueueKind = 'pg' | 'bullmq'

/** The event and workflow queue: the PostgreSQL job table (embedded default) and BullMQ on Redis (production). */
export const QUEUE_KINDS: QueueKind[] = (process.env.TRELLIS_TEST_QUEUES ?? 'pg,bullmq').split(',') as QueueKind[]

export const REDIS_URL = process.env.TRELLIS_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** One cell of the test matrix: a database and a queue. */
export interface TestSetup {
  db: DbKind
  queue: QueueKind
  /** Names the sub-test, e.g. `postgres + bullmq`. */
  name: string
}

/** Every database with every queue: what suites about events and webhooks run on (docs/adr/0023-test-matrix.md). */
export const QUEUE_MATRIX: TestSetup[] = DB_KINDS.flatMap((db) =>
  QUEUE_KINDS.map((queue) => ({ db, queue, name: `${db} + ${queue}` })),
)

export const PG_ADMIN_URL = process.env.TRELLIS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

export const ADMIN = { email: 'root@platform.test', password: 'platform-admin-password' }

export interface Reply {
  status: number
  body: any
  headers: Record<string, string | string[] | number | undefined>
}

export interface TestKernel {
  kernel: Kernel
  kind: DbKind
  queue: QueueKind
  /** A fresh, real HTTP-shaped request through the whole stack (Fastify inject). */
  req(
    method: string,
    url: string,
    opts?: { token?: string; body?: unknown; headers?: Record<string, string>; raw?: string },
  ): Promise<Reply>
  login(
    email: string,
    password: string,
    orgId?: string,
  ): Promise<{ token: string; refreshToken: string; orgId: string }>
  /** SQL as the owner (superuser in tests): for setting up attacks and reading what really got written. */
  ownerSql<T = any>(text: string, params?: unknown[]): Promise<T[]>
  /** SQL in an application transaction scoped to `orgId` (null: no tenant set). */
  appSql<T = any>(orgId: string | null, text: string, params?: unknown[]): Promise<T[]>
  adminToken: string
  databaseUrl?: string
  /** With the BullMQ queue: the key prefix of this kernel's queues in Redis. */
  redisPrefix?: string
}

/**
 * Where the test processes keep the migrated embedded database they all start from (one file
 * per schema; see `embeddedTemplate`).
 */
export const TEST_TEMPLATE_DIR = join(tmpdir(), 'trellis-test-templates')

/** The migrated embedded database every test's PGlite starts from (made once per schema). */
export function testEmbeddedTemplate(): Promise<string> {
  return embeddedTemplate(TEST_TEMPLATE_DIR)
}

/**
 * A fresh PostgreSQL database of this test's own, already migrated to head: a copy of the
 * schema's template database (see `pgTemplate`), exactly what migrating an empty one produces.
 * `empty: true` gives an empty database instead, for tests of migrating itself.
 */
export async function createTestDatabase(
  options: { empty?: boolean } = {},
): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `trellis_t_${process.pid}_${randomBytes(4).toString('hex')}`
  const template = options.empty ? undefined : await pgTemplate(PG_ADMIN_URL)
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL })
  await admin.connect()
  try {
    if (template) await createFromTemplate(admin, name, template)
    else await admin.query(`create database ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(PG_ADMIN_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL })
      await c.connect()
      await c.query(`drop database if exists ${name} with (force)`)
      await c.end()
    },
  }
}

/**
 * A database that outlives a kernel, for tests that stop one and start another on it: a fresh
 * PostgreSQL database, or an embedded database in a directory of its own. Returns the
 * environment and the `embeddedDir` to give `loadConfig`/`createKernel`; both go at teardown.
 */
export async function durableDatabase(
  t: Test,
  kind: DbKind,
  prefix = 'trellis-restart-',
): Promise<{ env: NodeJS.ProcessEnv; embeddedDir?: string }> {
  const env: NodeJS.ProcessEnv = {
    LOG_LEVEL: 'silent',
    TRELLIS_SECRET_KEY: randomBytes(32).toString('hex'),
    TRELLIS_DATA_DIR: '/tmp/trellis-test-unused',
    PORT: '0',
  }
  if (kind === 'postgres') {
    const db = await createTestDatabase()
    t.teardown(db.drop)
    return { env: { ...env, DATABASE_URL: db.url } }
  }
  const embeddedDir = await mkdtemp(join(tmpdir(), prefix))
  t.teardown(() => rm(embeddedDir, { recursive: true, force: true }))
  return { env, embeddedDir }
}

/** Every Redis key under `prefix` (one kernel's queues and their fairness counters). */
export async function redisKeys(prefix: string): Promise<string[]> {
  const redis = new Redis(REDIS_URL)
  try {
    const keys: string[] = []
    let cursor = '0'
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
      keys.push(...found)
      cursor = next
    } while (cursor !== '0')
    return keys
  } finally {
    redis.disconnect()
  }
}

/** Removes every key under `prefix` (unique to one kernel), so Redis keeps nothing of a test. */
export async function dropRedisKeys(prefix: string) {
  const keys = await redisKeys(prefix)
  if (keys.length === 0) return
  const redis = new Redis(REDIS_URL)
  try {
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500))
  } finally {
    redis.disconnect()
  }
}

/**
 * Starts one kernel for a whole test file (or sub-suite) on a fresh database, with a platform admin signed in.
 * With a `TestSetup` whose queue is `bullmq`, the kernel's event and workflow queues are BullMQ on Redis under a
 * prefix no other kernel uses (files run in parallel), removed again at teardown.
 */
export async function startTestKernel(
  t: Test,
  setup: DbKind | TestSetup,
  { env: extraEnv, ...options }: Partial<KernelOptions> & { env?: NodeJS.ProcessEnv } = {},
): Promise<TestKernel> {
  const kind = typeof setup === 'string' ? setup : setup.db
  const queue: QueueKind = typeof setup === 'string' ? 'pg' : setup.queue
  let databaseUrl: string | undefined
  if (kind === 'postgres') {
    const db = await createTestDatabase()
    databaseUrl = db.url
    t.teardown(db.drop)
  }
  const env: NodeJS.ProcessEnv = {
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    TRELLIS_SECRET_KEY: randomBytes(32).toString('hex'),
    TRELLIS_DATA_DIR: '/tmp/trellis-test-unused',
    PORT: '0',
    TRELLIS_AUTH_RATE_LIMIT_PER_MINUTE: '100000',
  }
  if (databaseUrl) env.DATABASE_URL = databaseUrl
  Object.assign(env, extraEnv)
  const prefix = `trellis-test-${process.pid}-${randomBytes(4).toString('hex')}`
  if (queue === 'bullmq') Object.assign(env, { REDIS_URL, TRELLIS_QUEUE_PREFIX: prefix })
  const kernel = await createKernel({
    config: loadConfig(env),
    embeddedDir: 'memory://',
    ...(kind === 'pglite' ? { embeddedTemplate: await testEmbeddedTemplate() } : {}),
    migrate: true,
    rateLimitPerMinute: 100_000,
    ...options,
  })
  t.teardown(async () => {
    await kernel.close()
    if (queue === 'bullmq') await dropRedisKeys(prefix)
  })
  await createPlatformAdmin(kernel.ctx, { email: ADMIN.email, password: ADMIN.password })

  const req: TestKernel['req'] = async (method, url, opts = {}) => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) }
    if (opts.token) headers.authorization = `Bearer ${opts.token}`
    let payload: string | undefined = opts.raw
    if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body)
      headers['content-type'] ??= 'application/json'
    }
    const res = await kernel.app.inject({ method: method as any, url, headers, payload })
    let body: unknown = res.body
    if ((res.headers['content-type'] ?? '').toString().includes('json') && res.body) body = JSON.parse(res.body)
    return { status: res.statusCode, body, headers: res.headers }
  }
  const login: TestKernel['login'] = async (email, password, orgId) => {
    const r = await req('POST', '/v1/auth/login', { body: { email, password, ...(orgId ? { orgId } : {}) } })
    if (r.status !== 200) throw new Error(`login ${email} failed: ${r.status} ${JSON.stringify(r.body)}`)
    return { token: r.body.accessToken, refreshToken: r.body.refreshToken, orgId: r.body.org.id }
  }
  const ownerSql: TestKernel['ownerSql'] = (text, params = []) =>
    kernel.ctx.db.asOwner((tx: Tx) => tx.sql(text, params))
  const appSql: TestKernel['appSql'] = (orgId, text, params = []) =>
    kernel.ctx.db.inOrg(orgId, (tx) => tx.sql(text, params))
  const adminToken = (await login(ADMIN.email, ADMIN.password)).token
  return {
    kernel,
    kind,
    queue,
    req,
    login,
    ownerSql,
    appSql,
    adminToken,
    databaseUrl,
    ...(queue === 'bullmq' ? { redisPrefix: prefix } : {}),
  }
}

/** A tenant (optionally under a partner) with a tenant admin, signed in. */
export async function createTenantWithAdmin(
  k: TestKernel,
  slug: string,
  opts: { token?: string; partnerId?: string } = {},
) {
  const email = `admin@${slug}.test`
  const password = `password-of-${slug}`
  const r = await k.req('POST', '/v1/tenants', {
    token: opts.token ?? k.adminToken,
    body: {
      name: slug,
      slug,
      ...(opts.partnerId ? { partnerId: opts.partnerId } : {}),
      admin: { email, name: `${slug} admin`, password },
    },
  })
  if (r.status !== 201) throw new Error(`tenant ${slug}: ${r.status} ${JSON.stringify(r.body)}`)
  const session = await k.login(email, password)
  return { tenant: r.body, email, password, ...session }
}

/** Invites a new person with a role into the caller's organisation; they accept with a new account and sign in. */
export async function addUser(k: TestKernel, adminToken: string, email: string, role: string) {
  const password = `password-of-${email}`
  const invited = await k.req('POST', '/v1/invitations', { token: adminToken, body: { email, role } })
  if (invited.status !== 201) throw new Error(`invite ${email}: ${invited.status} ${JSON.stringify(invited.body)}`)
  const accepted = await k.req('POST', '/v1/invitations/accept', {
    body: { token: invited.body.acceptToken, name: email, password },
  })
  if (accepted.status !== 200) throw new Error(`accept ${email}: ${accepted.status} ${JSON.stringify(accepted.body)}`)
  const session = await k.login(email, password, accepted.body.org.id)
  const user = (await k.req('GET', `/v1/users/${accepted.body.userId}`, { token: adminToken })).body
  return { user, password, ...session }
}
