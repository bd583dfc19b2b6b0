// Every `trellis` command that needs the schema, on a data directory nobody started a kernel in:
// the embedded default is migrated first as `start` does, and a PostgreSQL database that was never
// migrated is one line saying to migrate, exit 2 — never a stack trace about a missing table.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { trellisInProcess } from './helpers/cli-in-process.js'
import { createTestDatabase, TEST_TEMPLATE_DIR, testEmbeddedTemplate } from './helpers/test-kernel.js'

const CLI = fileURLToPath(new URL('../../platform/bin/trellis.js', import.meta.url))
const freshDir = () => mkdtempSync(join(tmpdir(), 'trellis-fresh-'))
// The migrated template the kernel's tests share stands in for the user's cache.
const embeddedEnv = () => ({
  TRELLIS_DATA_DIR: freshDir(),
  TRELLIS_CACHE_DIR: TEST_TEMPLATE_DIR,
  DATABASE_URL: undefined,
})
const noStack = /\n\s+at /

t.before(() => testEmbeddedTemplate())

t.test('`trellis keys rotate` on a new data directory, as a user types it, signs with a new key', async (t) => {
  const env = embeddedEnv()
  const r = spawnSync(process.execPath, [CLI, 'keys', 'rotate', '--json'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', ...env },
    encoding: 'utf8',
    timeout: 180_000,
  })
  t.equal(r.status, 0, r.stderr)
  t.notMatch(r.stderr, noStack, 'no stack trace')
  t.match(JSON.parse(r.stdout), { kid: String })
  t.ok(existsSync(join(env.TRELLIS_DATA_DIR, 'pgdata', 'PG_VERSION')), 'the data directory holds the database')
})

t.test('each database command on a new embedded data directory answers, not a stack trace', async (t) => {
  const ok: Array<[string, string[]]> = [
    ['audit verify', ['audit', 'verify', '--json']],
    ['audit checkpoint', ['audit', 'checkpoint', '--json']],
    ['admin create', ['admin', 'create', '--email', 'ops@example.test', '--json']],
    ['migrate status', ['migrate', 'status', '--json']],
    ['migrate down', ['migrate', 'down', '--yes', '--json']],
  ]
  for (const [name, args] of ok) {
    const r = await trellisInProcess(args, embeddedEnv())
    t.equal(r.status, 0, `${name} exits 0: ${r.stderr}`)
    t.notMatch(r.stderr, noStack, `${name}: no stack trace`)
    t.doesNotThrow(() => JSON.parse(r.stdout), `${name} prints its JSON`)
  }

  const env = embeddedEnv()
  const pack = join(env.TRELLIS_DATA_DIR, 'evidence.json')
  const created = await trellisInProcess(['evidence', 'create', '--out', pack], env)
  t.equal(created.status, 0, `evidence create exits 0: ${created.stderr}`)
  t.match(JSON.parse(readFileSync(pack, 'utf8')), Object, 'the pack is written')
  const verified = await trellisInProcess(['evidence', 'verify', pack, '--json'], embeddedEnv())
  t.notMatch(verified.stderr, noStack, 'evidence verify on another new directory: no stack trace')
  t.equal(verified.status, 1, 'a pack signed by another platform does not verify there')

  // Commands about an organisation that is not there: one line with the error's code.
  const missing: Array<[string, string, string[]]> = [
    ['export', 'KRN_ERR_NOT_FOUND', ['export', '--tenant', randomUUID(), '--out', join(freshDir(), 'a.tar')]],
    ['knowledge evaluate', 'KB_ERR_BASE_NOT_FOUND', ['knowledge', 'evaluate', '--tenant', randomUUID(), '--kb', 'faq']],
  ]
  for (const [name, code, args] of missing) {
    const r = await trellisInProcess(args, embeddedEnv())
    t.equal(r.status, 1, `${name} exits 1`)
    t.match(r.stderr, new RegExp(`^trellis: ${code}: .+\n$`), `${name}: one line with the code: ${r.stderr}`)
    t.notMatch(r.stderr, /trellis_org_block|relation .* does not exist|\n\s+at /, `${name}: not a missing table`)
  }
})

t.test('a PostgreSQL database never migrated: one line saying to migrate, exit 2, nothing written', async (t) => {
  const db = await createTestDatabase({ empty: true })
  t.teardown(db.drop)
  const env = { DATABASE_URL: db.url, TRELLIS_SECRET_KEY: 'c'.repeat(64), TRELLIS_DATA_DIR: freshDir() }
  for (const args of [
    ['keys', 'rotate'],
    ['audit', 'verify'],
    ['audit', 'checkpoint'],
    ['export', '--tenant', randomUUID(), '--out', '/dev/null'],
  ]) {
    const r = await trellisInProcess(args, env)
    t.equal(r.status, 2, `${args.join(' ')} exits 2`)
    t.equal(r.stdout, '', 'nothing on stdout')
    t.match(
      r.stderr,
      /^trellis: KRN_ERR_SCHEMA_BEHIND: the database needs migrations \(\S+, … \d+ more …, \S+\): run trellis migrate up\n$/,
      `${args.join(' ')}: ${r.stderr}`,
    )
  }
  const status = await trellisInProcess(['migrate', 'status', '--json'], env)
  t.same(JSON.parse(status.stdout).applied, [], 'no migration was applied behind the operator’s back')
})

t.test('an unreachable DATABASE_URL for a command other than start: one line naming it, exit 2', async (t) => {
  const r = await trellisInProcess(['keys', 'rotate'], {
    DATABASE_URL: 'postgres://postgres@127.0.0.1:1/trellis',
    TRELLIS_SECRET_KEY: 'c'.repeat(64),
    TRELLIS_DATA_DIR: freshDir(),
  })
  t.equal(r.status, 2)
  t.match(r.stderr, /^trellis: KRN_ERR_CONFIG_INVALID: DATABASE_URL: cannot reach PostgreSQL at 127\.0\.0\.1:1 .*\n$/)
})
