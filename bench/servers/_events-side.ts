// What both sides of the events benchmark share (bench/servers/events-server.ts runs one side):
// the events they commit, how they are committed in batches and timed, and the control endpoint
// the benchmark drives them through.
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ProduceRequest {
  from: number
  total: number
  /** Events per transaction (kernel) or per addBulk (baseline). */
  batch: number
  /** Batches committing at once when driven as fast as it goes. */
  inFlight: number
  /** When set, one batch every `intervalMs` (a steady rate) instead of as fast as it goes. */
  intervalMs?: number
}

/** [first key of the batch, its size, when it committed (ms since the epoch, sub-millisecond)]. */
export type Commit = [number, number, number]

export const EVENT_TYPE = 'bench.item.committed'
/** A clock both processes and the receiver share (the epoch, with performance.now()'s resolution). */
export const now = () => performance.timeOrigin + performance.now()
/** Each event is about its own item: order per subject does not hold one back behind another. */
export const eventOf = (key: number) => ({
  type: EVENT_TYPE,
  subject: `item/${key}`,
  data: { key, sku: `SKU-${key}` } as Record<string, unknown>,
})

/** Commits the requested events batch by batch (`commit` makes one batch durable) and times each. */
export async function produce(req: ProduceRequest, commit: (keys: number[]) => Promise<void>): Promise<Commit[]> {
  const batches: number[][] = []
  for (let i = 0; i < req.total; i += req.batch)
    batches.push(Array.from({ length: Math.min(req.batch, req.total - i) }, (_, j) => req.from + i + j))
  const commits: Commit[] = []
  const one = async (keys: number[]) => {
    await commit(keys)
    commits.push([keys[0]!, keys.length, now()])
  }
  if (req.intervalMs) {
    // Paced: batch i is due at start + i × interval; a late one commits at once (nothing is skipped).
    const started = performance.now()
    const pending: Promise<void>[] = []
    for (let i = 0; i < batches.length; i++) {
      const wait = started + i * req.intervalMs - performance.now()
      if (wait > 1) await new Promise((r) => setTimeout(r, wait))
      pending.push(one(batches[i]!))
    }
    await Promise.all(pending)
  } else {
    let next = 0
    await Promise.all(
      Array.from({ length: req.inFlight }, async () => {
        while (next < batches.length) await one(batches[next++]!)
      }),
    )
  }
  return commits
}

/** Serves POST /produce: commits what is asked, answers with the commit times (500 if any commit failed). */
export function serveControl(commit: (keys: number[]) => Promise<void>): Promise<string> {
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      produce(JSON.parse(body) as ProduceRequest, commit).then(
        (commits) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(commits)),
        (err) => res.writeHead(500).end(String(err?.stack ?? err)),
      )
    })
  })
  return new Promise((r) =>
    server.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  )
}
