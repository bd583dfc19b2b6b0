// `npm run bench -- plugins`: a plugin route that validates its input and inserts one record,
// called through the API (auth → plugin host → sandbox → data service → response), against
// the kernel's own native route doing the same insert — both in one kernel process, on one
// fresh PostgreSQL database, 50 connections, measured in this run in alternating rounds.
import { fileURLToPath } from 'node:url'
import { startServer, compare, loadAverage, row, uniqueName, withBenchDatabase } from './_harness.js'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)

export async function run(): Promise<void> {
  await withBenchDatabase(`trellis_bench_plugins_${process.pid}`, async (databaseUrl) => {
    const server = await startServer<{ url: string; token: string }>(here('./servers/plugin-server.ts'), {
      DATABASE_URL: databaseUrl,
      TRELLIS_SECRET_KEY: 'c'.repeat(64),
    })
    const note = () => ({ title: uniqueName('note'), qty: 3 })
    const native = {
      url: `${server.info.url}/v1/bench/notes`,
      method: 'POST' as const,
      token: server.info.token,
      body: note,
    }
    const plugin = {
      url: `${server.info.url}/v1/x/notes/notes`,
      method: 'POST' as const,
      token: server.info.token,
      body: note,
    }
    try {
      const c = await compare(native, plugin, { seconds: SECONDS * 2 })
      const { base, subject: viaPlugin } = c
      console.log(row('kernel: native route, validate + insert', base))
      console.log(row('plugin: POST /v1/x/notes/notes (sandbox)', viaPlugin, c))
      console.log()
      console.log(
        `plugin route: ${(c.ratio * 100).toFixed(0)} % of the native route (target ≥ 40 %), p50 ${viaPlugin.p50.toFixed(0)} ms, p99 ${viaPlugin.p99} ms; ${loadAverage()}${c.valid ? '' : '; INVALID: not every answer was 2xx'}`,
      )
      if (base.errors + base.non2xx + viaPlugin.errors + viaPlugin.non2xx > 0) process.exitCode = 1
    } finally {
      await server.stop()
    }
  })
}
