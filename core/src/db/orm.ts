// The kernel's MikroORM instance (its entities, pool and migrations) and, loaded only when
// migrations are run or listed, its migrator (ADR 0114).
import { MikroORM } from '@mikro-orm/postgresql'
import { migrationsList } from '@trellis/migrations'
import type { Logger } from 'pino'
import { PartnerSchema, TenantSchema } from '../tenancy/entities.js'
import { ApiKeySchema, RoleSchema, UserSchema } from '../identity/entities.js'
import { AuditEntrySchema } from '../audit/entities.js'

const ENTITIES = [PartnerSchema, TenantSchema, UserSchema, RoleSchema, ApiKeySchema, AuditEntrySchema]

/** An ORM over `clientUrl` with a pool of at most `poolMax` connections. */
export async function initOrm(clientUrl: string, poolMax: number, logger?: Logger): Promise<MikroORM> {
  return MikroORM.init({
    clientUrl,
    entities: ENTITIES,
    pool: { min: 0, max: poolMax },
    discovery: { warnWhenNoEntities: false },
    allowGlobalContext: false,
    ensureDatabase: false,
    debug: false,
    logger: (message) => logger?.debug({ orm: true }, message),
    migrations: {
      migrationsList,
      tableName: 'trellis_migrations',
      transactional: true,
      allOrNothing: true,
      snapshot: false,
    },
  })
}

/**
 * The ORM's migrator, loaded when migrations are run or listed: the package and what it brings
 * (umzug and its command line) are a good part of a process's start, and a migrated database
 * needs none of it.
 */
export async function migratorOf(orm: MikroORM) {
  const { Migrator } = await import('@mikro-orm/migrations')
  Migrator.register(orm)
  return orm.migrator
}
