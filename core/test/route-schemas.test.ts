// Each route's request and response schemas are compiled on the route's first request (ADR
// 0114): every one of them must still compile, and a route used for the first time validates,
// coerces and serialises as one compiled at start did.
import t from 'tap'
import { compilePendingSchemas } from '../src/http/lazy-schemas.js'
import { createTenantWithAdmin, startTestKernel } from './helpers/test-kernel.js'

t.test('route schemas compile on first use, and every one compiles', async (t) => {
  const k = await startTestKernel(t, 'pglite')
  const a = await createTenantWithAdmin(k, 'route-schemas')

  // First requests of routes: a body refused by its schema, a querystring coerced by it, a
  // response serialised by it (fields the schema does not name are left out).
  const bad = await k.req('POST', '/v1/roles', { token: a.token, body: { name: 'clerk', permissions: 'all' } })
  t.equal(bad.status, 400)
  t.equal(bad.body.code, 'KRN_ERR_VALIDATION_FAILED')
  t.match(bad.body.problems, [{ in: 'body', pointer: '/permissions' }], 'the problem names the field')
  for (const name of ['first', 'second']) {
    const key = await k.req('POST', '/v1/api-keys', { token: a.token, body: { name, permissions: ['users.read'] } })
    t.equal(key.status, 201, JSON.stringify(key.body))
    t.type(key.body.key, 'string', 'the secret is in the answer once')
  }
  const page = await k.req('GET', '/v1/api-keys?limit=1', { token: a.token })
  t.equal(page.status, 200)
  t.equal(page.body.items.length, 1, 'limit=1 coerced to a number and applied')
  t.type(page.body.nextCursor, 'string')
  const badLimit = await k.req('GET', '/v1/api-keys?limit=many', { token: a.token })
  t.equal(badLimit.status, 400)
  t.equal(badLimit.body.code, 'KRN_ERR_VALIDATION_FAILED')

  // Whatever no request has used yet compiles now: a broken schema would throw here, not on
  // some user's first request.
  const compiled = compilePendingSchemas()
  t.ok(compiled > 200, `${compiled} route schemas not used by this test compiled`)
  t.equal(compilePendingSchemas(), 0, 'each is compiled once')
})
