import t from 'tap'
import Fastify from 'fastify'
import { RateLimiter } from '../src/http/rate-limit.js'
import { toTrellisError, sendProblem } from '../src/http/problem.js'

t.test('a fixed window per key: counted, refused past the limit, open again when the window ends', async (t) => {
  const limiter = new RateLimiter(3, 300)
  const app = Fastify()
  app.setErrorHandler((err, request, reply) => sendProblem(request, reply, toTrellisError(err)))
  app.addHook('preHandler', limiter.hook)
  app.get('/', async () => ({ ok: true }))
  t.teardown(async () => {
    limiter.close()
    await app.close()
  })
  const hit = () => app.inject({ method: 'GET', url: '/' })
  const seen = []
  for (let i = 0; i < 4; i++) seen.push(await hit())
  t.same(
    seen.map((r) => r.statusCode),
    [200, 200, 200, 429],
  )
  t.same(
    seen.map((r) => r.headers['x-ratelimit-remaining']),
    ['2', '1', '0', '0'],
  )
  t.equal(seen[3]!.json().code, 'KRN_ERR_RATE_LIMITED')
  t.ok(Number(seen[3]!.headers['retry-after']) >= 1)
  await new Promise((r) => setTimeout(r, 350))
  const again = await hit()
  t.equal(again.statusCode, 200, 'a new window')
  t.equal(again.headers['x-ratelimit-remaining'], '2')
})
