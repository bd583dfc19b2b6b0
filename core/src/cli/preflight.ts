// What `trellis start` checks before it builds the kernel: the database and Redis it was pointed
// at answer, and its port is free. Each failure is one line naming the variable, with a hint
// (KRN_ERR_CONFIG_INVALID, exit 2), instead of a stack trace or a kernel that waits forever.
import { createServer } from 'node:net'
import pg from 'pg'
import { Redis } from 'ioredis'
import type { KernelConfig } from '../config.js'
import { KRN } from '../errors.js'

const TIMEOUT_MS = 10_000

function where(url: string): string {
  const u = new URL(url)
  return `${u.hostname || 'localhost'}:${u.port || (u.protocol.startsWith('redis') ? 6379 : 5432)}`
}

function reasonOf(err: unknown): string {
  const e = err as { code?: string; message?: string }
  return e.code && !e.message?.includes(e.code) ? `${e.code}: ${e.message}` : (e.message ?? String(err))
}

export async function checkDatabase(variable: string, url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: TIMEOUT_MS })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('select 1')
  } catch (err) {
    throw KRN.CONFIG_INVALID({
      variable,
      reason: `cannot reach PostgreSQL at ${where(url)} (${reasonOf(err)}); is it running, and are host, port, user and password right?`,
    })
  } finally {
    await client.end().catch(() => {})
  }
}

export async function checkRedis(url: string): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  })
  let first: unknown
  redis.on('error', (err) => (first ??= err))
  try {
    await redis.connect()
    await redis.ping()
  } catch (err) {
    throw KRN.CONFIG_INVALID({
      variable: 'REDIS_URL',
      reason: `cannot reach Redis at ${where(url)} (${reasonOf(first ?? err)}); start Redis, or unset REDIS_URL to queue events in PostgreSQL`,
    })
  } finally {
    redis.disconnect()
  }
}

/** The error for a port another process holds (also what a failed listen is turned into). */
export function portInUse(port: number, host: string) {
  return KRN.CONFIG_INVALID({
    variable: 'PORT',
    reason: `${host}:${port} is in use by another process; stop it, or choose another port with PORT or --port`,
  })
}

export async function checkPort(port: number, host: string): Promise<void> {
  if (port === 0) return
  await new Promise<void>((resolve, reject) => {
    const server = createServer()
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? portInUse(port, host) : err),
    )
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve()))
  })
}

export async function preflight(config: KernelConfig): Promise<void> {
  await checkPort(config.port, config.host)
  if (config.databaseUrl) await checkDatabase('DATABASE_URL', config.databaseUrl)
  if (config.redisUrl) await checkRedis(config.redisUrl)
}
