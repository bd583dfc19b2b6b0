import t from 'tap'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from './config.js'

const KEY = 'a'.repeat(64)

t.test('bad variables are named in a clear error', async (t) => {
  const cases: Array<[NodeJS.ProcessEnv, string]> = [
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ DATABASE_URL: 'not a url', TRELLIS_SECRET_KEY: KEY }, 'DATABASE_URL'],
    [{ DATABASE_URL: 'postgres://h/db' }, 'TRELLIS_SECRET_KEY'],
    [{ DATABASE_ADMIN_URL: 'postgres://h/db' }, 'DATABASE_ADMIN_URL'],
    [{ REDIS_URL: 'http://h' }, 'REDIS_URL'],
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ TRELLIS_SECRET_KEY: 'short' }, 'TRELLIS_SECRET_KEY'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://x' }, 'OTEL_EXPORTER_OTLP_ENDPOINT'],
    [{ TRELLIS_EVENT_RETENTION_DAYS: '0' }, 'TRELLIS_EVENT_RETENTION_DAYS'],
    [{ TRELLIS_EVENT_RETENTION_DAYS: 'a month' }, 'TRELLIS_EVENT_RETENTION_DAYS'],
    [{ TRELLIS_EVENT_RETENTION_DAYS: '7.5' }, 'TRELLIS_EVENT_RETENTION_DAYS'],
    [{ TRELLIS_DELIVERY_RETENTION_DAYS: '-3' }, 'TRELLIS_DELIVERY_RETENTION_DAYS'],
    [{ TRELLIS_DELIVERY_RETENTION_DAYS: '99999' }, 'TRELLIS_DELIVERY_RETENTION_DAYS'],
    [{ TRELLIS_PASSWORD_COST: '9' }, 'TRELLIS_PASSWORD_COST'],
    [{ TRELLIS_PASSWORD_COST: '21' }, 'TRELLIS_PASSWORD_COST'],
    [{ TRELLIS_PASSWORD_COST: 'high' }, 'TRELLIS_PASSWORD_COST'],
  ]
  const dataDir = mkdtempSync(join(tmpdir(), 'trellis-config-'))
  for (const [env, variable] of cases) {
    t.throws(
      () => loadConfig({ TRELLIS_DATA_DIR: dataDir, ...env }),
      { code: 'KRN_ERR_CONFIG_INVALID', message: new RegExp(`^${variable}: `) },
      variable,
    )
  }
})

t.test('the embedded default generates its secret key once and keeps it', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'trellis-config-'))
  const first = loadConfig({ TRELLIS_DATA_DIR: dataDir })
  const second = loadConfig({ TRELLIS_DATA_DIR: dataDir })
  t.equal(first.secretKey.length, 32)
  t.same(first.secretKey, second.secretKey)
  t.equal(readFileSync(join(dataDir, 'secret.key'), 'utf8').trim(), first.secretKey.toString('hex'))
  t.equal(first.databaseUrl, undefined)
  t.equal(first.port, 3000)
})

t.test('PostgreSQL settings are read as given', async (t) => {
  const c = loadConfig({
    DATABASE_URL: 'postgres://app@db/trellis',
    DATABASE_ADMIN_URL: 'postgres://owner@db/trellis',
    TRELLIS_SECRET_KEY: KEY,
    PORT: '8080',
    HOST: '0.0.0.0',
    LOG_LEVEL: 'debug',
  })
  t.match(c, {
    databaseUrl: 'postgres://app@db/trellis',
    databaseAdminUrl: 'postgres://owner@db/trellis',
    port: 8080,
    host: '0.0.0.0',
    logLevel: 'debug',
  })
  t.same(c.secretKey, Buffer.from(KEY, 'hex'))
})

t.test('event and delivery retention: 30 days unless set', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'trellis-config-'))
  t.match(loadConfig({ TRELLIS_DATA_DIR: dataDir }), { eventRetentionDays: 30, deliveryRetentionDays: 30 })
  t.match(
    loadConfig({ TRELLIS_DATA_DIR: dataDir, TRELLIS_EVENT_RETENTION_DAYS: '7', TRELLIS_DELIVERY_RETENTION_DAYS: '90' }),
    { eventRetentionDays: 7, deliveryRetentionDays: 90 },
  )
})
