import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { KRN } from '../errors.js'
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import { vector } from '@electric-sql/pglite-pgvector'

export interface EmbeddedPostgres {
  /** postgres:// URL of the socket server in front of PGlite. */
  url: string
  stop(): Promise<void>
}

/**
 * Starts PGlite (real PostgreSQL compiled to WASM) and serves it on a loopback port through
 * pglite-socket, so the kernel's one code path (pg + MikroORM) runs unchanged on a laptop.
 * PGlite is a single-session database: the caller must use exactly one connection, or
 * statements of concurrent transactions would interleave in one session.
 * @param dataDir - a directory to persist into, or `memory://` for a throw-away database
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  const release = dataDir.startsWith('memory://') ? () => {} : lockDataDir(dataDir)
  let db: PGlite
  try {
    // pgvector ships with PGlite: knowledge retrieval uses it where the extension exists.
    db = await PGlite.create(dataDir, { extensions: { vector } })
  } catch (err) {
    release()
    throw err
  }
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 1 })
  await server.start()
  const conn = server.getServerConn()
  return {
    url: `postgres://postgres@${conn}/postgres?sslmode=disable`,
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
