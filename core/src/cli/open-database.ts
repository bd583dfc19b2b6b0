// The database a `trellis` command works on, with the schema its code needs — as `start` has it:
// the embedded default is migrated first (a new data directory starts from the cached template),
// and a PostgreSQL database behind the code is refused with one line saying to migrate
// (KRN_ERR_SCHEMA_BEHIND, exit 2) instead of a query failing on a table that is not there.
import type { KernelConfig } from '../config.js'
import { Database } from '../db/database.js'
import { KRN } from '../errors.js'
import { embeddedTemplateOption } from './embedded-template-option.js'
import { checkDatabase } from './preflight.js'

/** Opens the database of `config` with every migration of this code applied (see above). */
export async function openMigratedDatabase(
  config: Pick<KernelConfig, 'databaseUrl' | 'databaseAdminUrl' | 'dataDir'>,
): Promise<Database> {
  await checkDatabases(config)
  const db = await Database.open({ ...config, ...(await embeddedTemplateOption(config)) })
  try {
    if (db.embedded) await db.migrate('up')
    else {
      const pending = await db.unappliedMigrations()
      if (pending.length) throw KRN.SCHEMA_BEHIND({ pending: summary(pending) })
    }
    return db
  } catch (err) {
    await db.close()
    throw err
  }
}

/** An unreachable DATABASE_URL (or DATABASE_ADMIN_URL) is one line naming it, as for `start`. */
export async function checkDatabases(config: Pick<KernelConfig, 'databaseUrl' | 'databaseAdminUrl'>): Promise<void> {
  if (!config.databaseUrl) return
  await checkDatabase('DATABASE_URL', config.databaseUrl)
  if (config.databaseAdminUrl && config.databaseAdminUrl !== config.databaseUrl)
    await checkDatabase('DATABASE_ADMIN_URL', config.databaseAdminUrl)
}

/** A database never migrated has every migration pending: name the first and the last only. */
function summary(pending: string[]): string[] {
  return pending.length <= 3 ? pending : [pending[0]!, `… ${pending.length - 2} more …`, pending.at(-1)!]
}
