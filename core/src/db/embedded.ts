import { mkdirSync } from 'node:fs'
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

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
  if (!dataDir.startsWith('memory://')) mkdirSync(dataDir, { recursive: true })
  const db = await PGlite.create(dataDir)
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 1 })
  await server.start()
  const conn = server.getServerConn()
  return {
    url: `postgres://postgres@${conn}/postgres?sslmode=disable`,
    async stop() {
      await server.stop()
      await db.close()
    },
  }
}
