import pg from 'pg'
import { Database } from '../../src/db/database.js'
import { schemaFingerprint } from '../../src/db/schema-fingerprint.js'

// Any constant: every test process takes the same advisory lock while it makes the template.
const LOCK = 7_340_019

let template: Promise<string> | undefined

/**
 * The name of a PostgreSQL database migrated to head for this schema (`trellis_tpl_<fingerprint>`),
 * made once per schema by whichever test process gets there first (the others wait on an advisory
 * lock), then copied by `CREATE DATABASE … TEMPLATE` for every test database: a copy takes a
 * fraction of running every migration. It is made by migrating an empty database exactly as a
 * kernel does (roles are cluster-wide and exist already), then marked as a template that allows
 * no connections, so nothing can change it or block a copy.
 */
export function pgTemplate(adminUrl: string): Promise<string> {
  template ??= makeTemplate(adminUrl).catch((err) => {
    template = undefined
    throw err
  })
  return template
}

async function makeTemplate(adminUrl: string): Promise<string> {
  const name = `trellis_tpl_${schemaFingerprint()}`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  try {
    await admin.query('select pg_advisory_lock($1)', [LOCK])
    const found = await admin.query('select 1 from pg_database where datname = $1', [name])
    if (found.rowCount) return name
    const building = `${name}_building`
    await admin.query(`drop database if exists ${building} with (force)`)
    await admin.query(`create database ${building}`)
    const url = new URL(adminUrl)
    url.pathname = `/${building}`
    const db = await Database.open({ databaseUrl: url.toString(), dataDir: '/nonexistent', poolMax: 1 })
    try {
      await db.migrate('up')
    } finally {
      await db.close()
    }
    await admin.query(`alter database ${building} rename to ${name}`)
    await admin.query(`alter database ${name} with is_template true allow_connections false`)
    return name
  } finally {
    await admin.query('select pg_advisory_unlock($1)', [LOCK]).catch(() => {})
    await admin.end()
  }
}

/** Creates `name` as a copy of the template, retrying while another session still leaves the template (55006). */
export async function createFromTemplate(admin: pg.Client, name: string, templateName: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await admin.query(`create database ${name} template ${templateName}`)
      return
    } catch (err) {
      if ((err as { code?: string }).code !== '55006' || attempt >= 50) throw err
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}
