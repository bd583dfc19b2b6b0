// The supply side of `npm run bench -- erp` (also `npm run bench -- erp-supply` alone):
// - receiving a 20-line purchase order — POST /v1/x/procurement/purchase-orders/:n/receipts:
//   procurement re-reads and updates the order, adds stock through inventory#receive (20 stock
//   records, 20 events), records the receipt and its events, one tenant transaction across two
//   sandboxed plugins;
// - processing a return — POST /v1/x/returns/rmas/:n/receive of an approved authorisation:
//   one unit restocked through inventory#receive, one scrapped, the credit booked on the order
//   through orders#recordReturn, a credit note and the events, across three plugins;
// each against the same SQL run natively: the statements such a request caused, recorded and
// replayed in one tenant transaction by a kernel route (bench/servers/_sql-replay.ts).
// Both sides must answer 2xx to every request; alternating rounds; 10 connections (each request
// takes a purchase order or authorisation of its own, round robin, so they do not queue on one).
import { fileURLToPath } from 'node:url'
import { compare, loadAverage, row, startServer, withBenchDatabase } from './_harness.js'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const CONNECTIONS = Number(process.env.BENCH_SUPPLY_CONNECTIONS ?? 10)

interface Info {
  url: string
  token: string
  pos: string[]
  rmas: string[]
  rmaSetupMs: number
  receiptBody: unknown
  returnBody: unknown
  statements: { receipt: number[]; return: number[] }
  transcript: { receipt: string[]; return: string[] }
}

export async function run(): Promise<void> {
  await withBenchDatabase(`trellis_bench_supply_${process.pid}`, async (databaseUrl) => {
    const server = await startServer<Info>(here('./servers/erp-supply-server.ts'), {
      DATABASE_URL: databaseUrl,
      TRELLIS_SECRET_KEY: 'e'.repeat(64),
    })
    const { url, token, pos, rmas } = server.info
    try {
      for (const kind of ['receipt', 'return'] as const) {
        const s = server.info.statements[kind]
        console.log(`statements in the ${kind}'s transaction (recorded ${s.length}×): ${[...new Set(s)].join(' or ')}`)
        for (const [i, t] of server.info.transcript[kind].entries()) console.log(`  ${String(i + 1).padStart(2)}. ${t}`)
      }
      let nextPo = 0
      let nextRma = 0
      const native = (kind: string) => ({
        url: `${url}/v1/bench/replay/${kind}`,
        method: 'POST' as const,
        token,
        body: () => ({}),
        connections: CONNECTIONS,
      })
      const receive = {
        url: `${url}/v1/x/procurement/purchase-orders/${pos[0]}/receipts`,
        path: () => `/v1/x/procurement/purchase-orders/${pos[nextPo++ % pos.length]}/receipts`,
        method: 'POST' as const,
        token,
        body: () => server.info.receiptBody,
        connections: CONNECTIONS,
      }
      const giveBack = {
        url: `${url}/v1/x/returns/rmas/${rmas[0]}/receive`,
        // Past the prepared ones an authorisation comes round again: received already, it answers
        // 409 and the run is invalid (raise BENCH_SUPPLY_RMAS).
        path: () => `/v1/x/returns/rmas/${rmas[nextRma++ % rmas.length]}/receive`,
        method: 'POST' as const,
        token,
        body: () => server.info.returnBody,
        connections: CONNECTIONS,
      }
      const runs = [
        { kind: 'receipt', label: 'receive a 20-line PO', subject: receive },
        { kind: 'return', label: 'process a return', subject: giveBack },
      ]
      for (const r of runs) {
        const c = await compare(native(r.kind), r.subject, { seconds: SECONDS * 2 })
        console.log(row(`native replay (${r.label})`, c.base))
        console.log(row(`plugins (${r.label})`, c.subject, c))
        console.log(
          `${r.label}: ${c.subject.rps.toFixed(0)} req/s, p50 ${c.subject.p50.toFixed(0)} ms, p99 ${c.subject.p99} ms — ${(c.ratio * 100).toFixed(0)} % of the same SQL run natively (${c.base.rps.toFixed(0)} req/s, p99 ${c.base.p99} ms); ${loadAverage()}${c.valid ? '' : '; INVALID: not every answer was 2xx'}`,
        )
        if (!c.valid) process.exitCode = 1
      }
      console.log(
        `(return authorisations taken: ${nextRma} of ${rmas.length}, prepared in ${(server.info.rmaSetupMs / 1000).toFixed(0)} s)`,
      )
    } finally {
      await server.stop()
    }
  })
}
