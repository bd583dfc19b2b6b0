// wrk as a load generator: a C client on one thread, as pgbench runs its clients (-j 1), for a
// comparison whose other side is pgbench. autocannon, the harness's client, runs JavaScript in the
// bench process on the same two cores and spends 60–70 µs of CPU per roles request there — about
// a tenth of the write's CPU, which pgbench's own client does not pay. `apt-get install wrk`;
// without it (or with BENCH_HTTP_CLIENT=autocannon) the harness's `load` is used.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { check2xx, type LoadResult } from './_harness.js'

const run = promisify(execFile)
const WRK = process.env.WRK ?? '/usr/bin/wrk'

/** Whether wrk drives the HTTP side of a comparison with pgbench. */
export const useWrk = () => process.env.BENCH_HTTP_CLIENT !== 'autocannon' && existsSync(WRK)

let runs = 0

/**
 * POSTs `body(prefix, n)` — a Lua expression of the run's unique prefix and the request's number —
 * to `url` for `seconds` over `connections`, one thread; answers what `load` answers (2xx a second,
 * p50 and p99 in ms, every other answer counted).
 */
export async function wrkPost(o: {
  url: string
  token: string
  /** A Lua expression building the JSON body from `prefix` and `n`. */
  body: string
  connections: number
  seconds: number
}): Promise<LoadResult> {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-wrk-'))
  const script = join(dir, 'post.lua')
  const prefix = `w${process.pid}x${runs++}x${Date.now().toString(36)}`
  await writeFile(
    script,
    `local prefix, n = "${prefix}", 0
non2xx = 0 -- a global: done() reads it from each thread
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer ${o.token}"
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, ${o.body})
end
response = function(status)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non2xx") end
  local e = summary.errors
  io.write(string.format("WRK %d %d %d %d %d %d\\n", summary.requests, summary.duration, bad,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
`,
  )
  try {
    const { stdout } = await run(
      WRK,
      ['-t', '1', '-c', String(o.connections), '-d', `${Math.max(1, Math.round(o.seconds))}s`, '-s', script, o.url],
      { maxBuffer: 1 << 20 },
    )
    const m = /^WRK (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$/m.exec(stdout)
    if (!m) throw new Error(`wrk printed no summary:\n${stdout}`)
    const [requests, durationUs, non2xx, errors, p50Us, p99Us] = m.slice(1).map(Number) as number[]
    const r: LoadResult = {
      rps: (requests! - non2xx! - errors!) / (durationUs! / 1e6),
      p50: p50Us! / 1000,
      p99: p99Us! / 1000,
      errors: errors!,
      non2xx: non2xx!,
      statuses: non2xx ? { 'not 2xx': non2xx! } : {},
      load: loadavg()[0]!,
    }
    check2xx(`POST ${o.url} (wrk)`, r)
    return r
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
