import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KRN } from '../errors.js'
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import { vector } from '@electric-sql/pglite-pgvector'

export interface EmbeddedPostgres {
  /** postgres:// URL of the socket server in front of PGlite. */
  url: string
  /** A copy of the data directory (checkpointed first), for {@link startEmbeddedPostgres}'s `template`. */
  dump(): Promise<Blob>
  stop(): Promise<void>
}

/** Options of {@link startEmbeddedPostgres}. */
export interface EmbeddedOptions {
  /**
   * A data-directory dump (see `embeddedTemplate`) a new database starts from instead of an
   * empty one; ignored when `dataDir` already holds a database.
   */
  template?: string
}

/**
 * Starts PGlite (real PostgreSQL compiled to WASM) and serves it on a loopback port through
 * pglite-socket, so the kernel's one code path (pg + MikroORM) runs unchanged on a laptop.
 * PGlite is a single-session database: the caller must use exactly one connection, or
 * statements of concurrent transactions would interleave in one session.
 * @param dataDir - a directory to persist into, or `memory://` for a throw-away database
 */
export async function startEmbeddedPostgres(dataDir: string, options: EmbeddedOptions = {}): Promise<EmbeddedPostgres> {
  const memory = dataDir.startsWith('memory://')
  const release = memory ? () => {} : lockDataDir(dataDir)
  let db: PGlite
  try {
    const fresh = memory || !existsSync(join(dataDir, 'PG_VERSION'))
    const loadDataDir = options.template && fresh ? new Blob([await readFile(options.template)]) : undefined
    // pgvector ships with PGlite: knowledge retrieval uses it where the extension exists.
    db = await PGlite.create(dataDir, { extensions: { vector }, ...(loadDataDir ? { loadDataDir } : {}) })
  } catch (err) {
    release()
    throw err
  }
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 1 })
  await server.start()
  const conn = server.getServerConn()
  return {
    url: `postgres://postgres@${conn}/postgres?sslmode=disable`,
    async dump() {
      await db.exec('checkpoint')
      return db.dumpDataDir('none')
    },
    async stop() {
      await server.stop()
      await db.close()
      release()
    },
  }
}

// PGlite is one process's database: a second process opening the same directory would
// corrupt it. A pid file refuses that with a clear message (and is taken over from a dead pid).
function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true })
  const lock = join(dataDir, '..', 'trellis.pid')
  try {
    const pid = Number(readFileSync(lock, 'utf8'))
    if (pid && pid !== process.pid && isAlive(pid)) {
      throw KRN.CONFIG_INVALID({
        variable: 'TRELLIS_DATA_DIR',
        reason: `the embedded database in ${dataDir} is in use by process ${pid}; stop it first, or use DATABASE_URL`,
      })
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  writeFileSync(lock, String(process.pid))
  return () => rmSync(lock, { force: true })
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
