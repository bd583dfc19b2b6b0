// `trellis start` (and `admin create`) on a new embedded data directory load the migrated
// template kept in the user's cache (made once per schema, ADR 0045) instead of creating and
// migrating a database: seconds instead of tens of seconds on the first start. `migrate up`
// keeps migrating an empty database, so that it shows what it applies.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { KernelConfig } from '../config.js'
import { defaultCacheDir, embeddedTemplate } from '../db/embedded-template.js'

/**
 * The kernel option that starts a new embedded database from the cached template: nothing on
 * PostgreSQL, for a data directory that holds a database already, or when the cache cannot be
 * used (a read-only home: the kernel then migrates as before).
 */
export async function embeddedTemplateOption(
  config: Pick<KernelConfig, 'databaseUrl' | 'dataDir'>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ embeddedTemplate?: string }> {
  if (config.databaseUrl || existsSync(join(config.dataDir, 'pgdata', 'PG_VERSION'))) return {}
  const template = await embeddedTemplate(defaultCacheDir(env)).catch(() => undefined)
  return template ? { embeddedTemplate: template } : {}
}
