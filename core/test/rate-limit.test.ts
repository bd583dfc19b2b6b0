import t from 'tap'
import Fastify from 'fastify'
import { RateLimiter } from '../src/http/rate-limit.js'
import { toTrellisError, sendProblem } from '../src/http/problem.js'
import { installFakeTimers } from './helpers/fake-timers.js'

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
  await app.ready()
  // The window is measured on a clock the test moves: how long the requests take does not matter.
  const clock = installFakeTimers()
  t.teardown(clock.restore)
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
  await clock.advance(299)
  t.equal((await hit()).statusCode, 429, 'still the same window a moment before it ends')
  await clock.advance(1)
  const again = await hit()
  t.equal(again.statusCode, 200, 'a new window')
  t.equal(again.headers['x-ratelimit-remaining'], '2')
  clock.restore()
})
