import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import { Database } from './database.js'
import { schemaFingerprint } from './schema-fingerprint.js'

const PREFIX = 'trellis-pglite-template-'
const DAY_MS = 24 * 3600 * 1000

/** The PGlite release and the migrations: a data directory dumped by one is only valid for the same two. */
export function embeddedTemplateKey(): string {
  const pkg = join(dirname(fileURLToPath(import.meta.resolve('@electric-sql/pglite'))), '..', 'package.json')
  const version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version
  return `${version}-${schemaFingerprint()}`
}

/** Where Trellis keeps caches: `$TRELLIS_CACHE_DIR`, else `$XDG_CACHE_HOME/trellis`, else `~/.cache/trellis`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.TRELLIS_CACHE_DIR || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'trellis')
}

/** Where {@link embeddedTemplate} keeps the dump for this kernel's schema (whether made yet or not). */
export function embeddedTemplatePath(cacheDir: string): string {
  return join(cacheDir, `${PREFIX}${embeddedTemplateKey()}.tar`)
}

const building = new Map<string, Promise<string>>()

/**
 * The path of a migrated embedded database (a PGlite data-directory dump) for this kernel's
 * schema, under `cacheDir`; made on first use by migrating an empty database exactly as a kernel
 * would, then reused by every new embedded database (`embeddedTemplate` of the kernel options):
 * loading it takes a second where creating and migrating one takes several. The file is written
 * under a temporary name and renamed, so concurrent processes never read half of one; dumps of
 * other schemas older than a day are removed.
 */
export function embeddedTemplate(cacheDir: string, logger?: Logger): Promise<string> {
  const file = embeddedTemplatePath(cacheDir)
  if (existsSync(file)) return Promise.resolve(file)
  let pending = building.get(file)
  if (!pending) {
    pending = build(cacheDir, file, logger).finally(() => building.delete(file))
    building.set(file, pending)
  }
  return pending
}

async function build(cacheDir: string, file: string, logger?: Logger): Promise<string> {
  await mkdir(cacheDir, { recursive: true })
  const db = await Database.open({ dataDir: cacheDir, embeddedDir: 'memory://' }, logger)
  try {
    await db.migrate('up')
    const dump = await db.dumpEmbedded()
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
    await writeFile(tmp, Buffer.from(await dump.arrayBuffer()))
    await rename(tmp, file)
  } finally {
    await db.close()
  }
  await pruneStale(cacheDir, file)
  return file
}

async function pruneStale(cacheDir: string, keep: string): Promise<void> {
  for (const name of await readdir(cacheDir).catch(() => [] as string[])) {
    const path = join(cacheDir, name)
    if (!name.startsWith(PREFIX) || path === keep) continue
    const age = Date.now() - (await stat(path).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs
    if (age > DAY_MS) await rm(path, { force: true })
  }
}
