// Statements that leave in one round trip (ADR 0111, ADR 0112). The extended protocol lets a
// client send several statements before one Sync: the server runs them in order and answers them
// all, skipping the rest after an error. node-postgres sends Sync after every statement; this
// query sends a transaction's opening statements, one prepared statement and, when it is the
// transaction's last, `commit`, then one Sync.
import { createRequire } from 'node:module'
import pg from 'pg'

/** How node-postgres maps a parameter to its text on the wire (what pg.Query binds with). */
const { prepareValue } = createRequire(import.meta.url)('pg/lib/utils') as { prepareValue: (v: unknown) => unknown }

/** What node-postgres's connection offers a query while it is being submitted (pg/lib/connection.js). */
interface WireConnection {
  parsedStatements: Record<string, string>
  execute(config: { portal?: string; rows?: number }): void
  parse(config: { text: string; name?: string; types?: unknown }): void
  bind(config: {
    portal?: string
    statement?: string
    values?: unknown[]
    binary?: boolean
    valueMapper?: unknown
  }): void
  describe(config: { type: 'P' | 'S'; name: string }): void
  sync(): void
}

/** What pg.Query calls back with: one result per statement once there are several. */
type Results = pg.QueryResult | pg.QueryResult[]

/** A named prepared statement: parsed once on each connection, then only bound and executed. */
export interface Statement {
  name: string
  text: string
  values?: unknown[]
}

interface Around {
  /** Statements run before the statement (`begin`, the scoping), in order. */
  open: readonly Statement[]
  /** Whether `commit` follows the statement. */
  commit: boolean
}

export const BEGIN: Statement = { name: 'trellis_begin', text: 'begin' }
export const COMMIT: Statement = { name: 'trellis_commit', text: 'commit' }

interface WireEvents {
  on(event: 'parseComplete', listener: () => void): void
  removeListener(event: 'parseComplete', listener: () => void): void
}

const BaseQuery = pg.Query as unknown as new (
  config: pg.QueryConfig,
  values?: unknown[],
  callback?: (err: Error | null, res: Results) => void,
) => {
  name?: string
  text: string
  values?: unknown[]
  types?: unknown
  binary?: boolean
  portal: string
  handleError(err: Error, connection: WireConnection): void
  handleReadyForQuery(connection: WireConnection): void
}

/**
 * The statement between its opening statements and `commit`, in one Sync. If any of them fails,
 * the server skips the rest: a failed opening statement or statement leaves the transaction failed
 * (the caller rolls back as after any failed statement); if the `commit` fails, nothing was written.
 */
class OneSync extends BaseQuery {
  private untrack: (() => void) | undefined

  constructor(
    config: pg.QueryConfig,
    values: unknown[],
    callback: (err: Error | null, res: Results) => void,
    private readonly around: Around,
  ) {
    super(config, values, callback)
  }

  /** Called by pg.Query.submit with the stream corked (pg/lib/query.js). */
  prepare(connection: WireConnection): void {
    const parsed = connection.parsedStatements
    // Every statement not yet prepared on the connection is parsed before anything runs, the
    // statement first: the client records the statement as prepared when any parse of the query
    // completes, so its own parse must come before any that could fail. An unnamed statement is
    // parsed last (each parse replaces the unnamed statement).
    const parseMain = !(this.name && parsed[this.name])
    if (parseMain && this.name) connection.parse({ text: this.text, name: this.name, types: this.types })
    const fresh: Statement[] = []
    for (const s of this.around.commit ? [...this.around.open, COMMIT] : this.around.open) {
      if (parsed[s.name]) continue
      connection.parse({ text: s.text, name: s.name })
      fresh.push(s)
    }
    if (fresh.length > 0) this.track(connection, parseMain && this.name ? [null, ...fresh] : fresh)
    // Each opening statement yields one result (its description, its rows, its completion).
    for (const s of this.around.open) {
      connection.bind({ statement: s.name, values: s.values, valueMapper: prepareValue })
      connection.describe({ type: 'P', name: '' })
      connection.execute({})
    }
    if (parseMain && !this.name) connection.parse({ text: this.text, types: this.types })
    try {
      connection.bind({
        portal: this.portal,
        statement: this.name,
        values: this.values,
        binary: this.binary,
        valueMapper: prepareValue,
      })
    } catch (err) {
      // A value that cannot be sent: the statement fails; what was sent before still ends with a
      // Sync, so the connection is answered and freed (the caller rolls back).
      this.handleError(err as Error, connection)
      connection.sync()
      return
    }
    connection.describe({ type: 'P', name: this.portal })
    connection.execute({ portal: this.portal })
    if (this.around.commit) {
      connection.bind({ statement: COMMIT.name })
      connection.execute({})
    }
    connection.sync()
  }

  /**
   * Records each statement of `expected` as prepared on the connection when its parse completes
   * (parses are answered in the order sent; after a failed one the server skips the rest, and
   * those stay unrecorded). `null` stands for the statement's own parse, which the client records.
   */
  private track(connection: WireConnection, expected: Array<Statement | null>): void {
    const events = connection as unknown as WireEvents
    const onParse = () => {
      const s = expected.shift()
      if (s) connection.parsedStatements[s.name] = s.text
      if (expected.length === 0) this.untrack?.()
    }
    events.on('parseComplete', onParse)
    this.untrack = () => {
      events.removeListener('parseComplete', onParse)
      this.untrack = undefined
    }
  }

  handleReadyForQuery(connection: WireConnection): void {
    this.untrack?.()
    super.handleReadyForQuery(connection)
  }
}

/** The connection as node-postgres's client: it takes a submittable query object. */
export interface SubmitConnection {
  query(q: object): unknown
}

/**
 * Runs the prepared statement `q` after the statements of `around.open` and, with
 * `around.commit`, commits the transaction it is in, in one round trip; resolves with the
 * statement's rows once all are done.
 */
export function oneSync(
  conn: SubmitConnection,
  q: { name?: string; text: string; values?: unknown[] },
  around: Around,
): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    conn.query(
      new OneSync(
        { name: q.name, text: q.text },
        q.values ?? [],
        (err, res) => {
          if (err) return reject(err)
          // pg.Query gathers one result per statement once there are two.
          resolve((Array.isArray(res) ? res[around.open.length]! : res).rows)
        },
        around,
      ),
    )
  })
}
