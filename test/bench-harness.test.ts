// The benchmarks' load generator counts only 2xx answers as throughput: a side that answers a
// fast 401 or 429 makes the run invalid (said loudly, exit code 1) instead of a flattering ratio.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { compare, load } from '../bench/_harness.js'

t.test('a fast 401 is not throughput, and makes the run invalid', async (t) => {
  const server = http.createServer((req, res) => {
    res.writeHead(req.url === '/ok' ? 200 : req.url === '/limited' ? 429 : 401).end('{}')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const errors: string[] = []
  const error = console.error
  console.error = (...args: unknown[]) => void errors.push(args.join(' '))
  t.teardown(() => {
    console.error = error
    process.exitCode = 0
  })

  const ok = await load({ url: `${base}/ok`, connections: 2, seconds: 1 })
  t.ok(ok.rps > 0, 'a 2xx side has throughput')
  t.equal(ok.non2xx, 0)
  t.equal(process.exitCode ?? 0, 0, 'and leaves the run valid')

  const refused = await load({ url: `${base}/refused`, connections: 2, seconds: 1 })
  t.equal(refused.rps, 0, 'the 401s count for nothing')
  t.ok(refused.non2xx > 0 && refused.statuses['401'] === refused.non2xx, 'each is counted by its status code')
  t.equal(process.exitCode, 1, 'the run exits 1')
  t.match(errors.join('\n'), /INVALID RUN .*\/refused: \d+ answers were not 2xx \(\d+× 401\)/)

  process.exitCode = 0
  const c = await compare(
    { url: `${base}/ok`, connections: 2 },
    { url: `${base}/limited`, connections: 2 },
    { rounds: 2, seconds: 2, warmUpSeconds: 1 },
  )
  t.equal(c.valid, false, 'a comparison with a 429 side is marked invalid')
  t.equal(c.ratio, 0, 'and its ratio does not flatter the side that was refused')
  t.equal(process.exitCode, 1)
})
