// A transaction's last statement and its `commit` in one round trip (ADR 0111). The extended
// protocol lets a client send several statements before one Sync: the server runs them in order
// and answers them all, skipping the rest after an error. node-postgres sends Sync after every
// statement; this query sends the statement, then `commit`, then one Sync.
import pg from 'pg'

/** What node-postgres's connection offers a query while it is being submitted (pg/lib/connection.js). */
interface WireConnection {
  execute(config: { portal?: string; rows?: number }): void
  parse(config: { text: string; name?: string }): void
  bind(config: { portal?: string; statement?: string; values?: unknown[] }): void
  sync(): void
}

/** What pg.Query calls back with: one result per statement once there are several. */
type Results = pg.QueryResult | pg.QueryResult[]

/**
 * A statement followed by `commit` in the same Sync. If the statement fails, the server skips
 * the `commit` and the transaction is left failed (the caller rolls back as after any failed
 * statement); if the `commit` fails, the transaction is over and nothing was written.
 */
class QueryThenCommit extends (pg.Query as unknown as new (
  config: pg.QueryConfig,
  values?: unknown[],
  callback?: (err: Error | null, res: Results) => void,
) => object) {
  /** Called by pg.Query once the statement is parsed, bound and described (pg/lib/query.js). */
  _getRows(connection: WireConnection, rows?: number): void {
    connection.execute({ portal: '', rows })
    connection.parse({ text: 'commit' })
    connection.bind({})
    connection.execute({})
    connection.sync()
  }
}

/** The connection as node-postgres's client: it takes a submittable query object. */
export interface SubmitConnection {
  query(q: object): unknown
}

/**
 * Runs the named prepared statement `q` and commits the transaction it is in, in one round trip;
 * resolves with the statement's rows once both are done.
 */
export function queryThenCommit(
  conn: SubmitConnection,
  q: { name: string; text: string; values: unknown[] },
): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    conn.query(
      new QueryThenCommit({ name: q.name, text: q.text }, q.values, (err, res) => {
        if (err) return reject(err)
        // pg.Query gathers one result per command once there are two: the statement's, then the commit's.
        resolve((Array.isArray(res) ? res[0]! : res).rows)
      }),
    )
  })
}
