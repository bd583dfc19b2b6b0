import t from 'tap'
import { DB_KINDS, startTestKernel, createTenantWithAdmin } from './helpers/test-kernel.js'

for (const kind of DB_KINDS) {
  t.test(`HTTP API conventions on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind)
    const a = await createTenantWithAdmin(k, `http-a-${kind}`)
    const b = await createTenantWithAdmin(k, `http-b-${kind}`)
    const roleCount = async () => (await k.ownerSql('select count(*)::int as n from roles')).at(0).n

    t.test('errors are problem+json with a stable code', async (t) => {
      const cases: Array<[string, Parameters<typeof k.req>, number, string]> = [
        ['unknown route', ['GET', '/v1/nope', { token: a.token }], 404, 'KRN_ERR_ROUTE_NOT_FOUND'],
        [
          'malformed JSON',
          [
            'POST',
            '/v1/roles',
            { token: a.token, raw: '{"name": "x",', headers: { 'content-type': 'application/json' } },
          ],
          400,
          'KRN_ERR_MALFORMED_JSON',
        ],
        [
          'oversized body',
          [
            'POST',
            '/v1/roles',
            {
              token: a.token,
              raw: JSON.stringify({ name: 'big', permissions: [], description: 'x'.repeat(1_100_000) }),
              headers: { 'content-type': 'application/json' },
            },
          ],
          413,
          'KRN_ERR_PAYLOAD_TOO_LARGE',
        ],
        [
          'wrong media type',
          [
            'POST',
            '/v1/roles',
            { token: a.token, raw: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
          ],
          415,
          'KRN_ERR_UNSUPPORTED_MEDIA_TYPE',
        ],
        [
          'schema violation',
          ['POST', '/v1/roles', { token: a.token, body: { name: 'Not Valid!', permissions: [] } }],
          400,
          'KRN_ERR_VALIDATION_FAILED',
        ],
        ['bad id', ['GET', "/v1/users/1' or '1'='1", { token: a.token }], 400, 'KRN_ERR_VALIDATION_FAILED'],
        [
          'bad permission string',
          [
            'POST',
            '/v1/roles',
            { token: a.token, body: { name: 'sqli', permissions: ["users.read'); drop table roles; --"] } },
          ],
          400,
          'KRN_ERR_VALIDATION_FAILED',
        ],
      ]
      const before = await roleCount()
      for (const [name, args, status, code] of cases) {
        const r = await k.req(...args)
        t.equal(r.status, status, name)
        t.equal(r.body.code, code, name)
        t.match(r.headers['content-type'], /^application\/problem\+json/, name)
        t.match(r.body, { type: `urn:trellis:error:${code}`, status, title: String, detail: String }, name)
      }
      t.equal(await roleCount(), before, 'nothing was written')
    })

    t.test('Idempotency-Key replays the first response, and refuses a different body', async (t) => {
      const headers = { 'idempotency-key': `create-role-${kind}` }
      const first = await k.req('POST', '/v1/roles', {
        token: a.token,
        headers,
        body: { name: 'idem', permissions: ['users.read'] },
      })
      t.equal(first.status, 201)
      const again = await k.req('POST', '/v1/roles', {
        token: a.token,
        headers,
        body: { name: 'idem', permissions: ['users.read'] },
      })
      t.equal(again.status, 201)
      t.same(again.body, first.body)
      t.equal(again.headers['idempotent-replayed'], 'true')
      t.equal((await k.ownerSql(`select count(*)::int as n from roles where name = 'idem'`))[0].n, 1, 'created once')
      const other = await k.req('POST', '/v1/roles', {
        token: a.token,
        headers,
        body: { name: 'idem2', permissions: ['users.read'] },
      })
      t.equal(other.status, 409)
      t.equal(other.body.code, 'KRN_ERR_IDEMPOTENCY_KEY_REUSED')
      t.equal((await k.ownerSql(`select count(*)::int as n from roles where name = 'idem2'`))[0].n, 0)
      // The same key from another tenant is a different request.
      const theirs = await k.req('POST', '/v1/roles', {
        token: b.token,
        headers,
        body: { name: 'idem', permissions: ['users.read'] },
      })
      t.equal(theirs.status, 201)
      t.not(theirs.body.id, first.body.id)
      // Errors (below 500) are replayed as well: the outcome of that request was an error.
      const conflictKey = { 'idempotency-key': `dup-${kind}` }
      const c1 = await k.req('POST', '/v1/roles', {
        token: a.token,
        headers: conflictKey,
        body: { name: 'idem', permissions: ['users.read'] },
      })
      t.equal(c1.status, 409)
      const c2 = await k.req('POST', '/v1/roles', {
        token: a.token,
        headers: conflictKey,
        body: { name: 'idem', permissions: ['users.read'] },
      })
      t.same([c2.status, c2.body.code, c2.headers['idempotent-replayed']], [409, 'KRN_ERR_CONFLICT', 'true'])
      t.equal(
        (
          await k.req('POST', '/v1/roles', {
            token: a.token,
            headers: { 'idempotency-key': 'x'.repeat(300) },
            body: { name: 'long', permissions: [] },
          })
        ).body.code,
        'KRN_ERR_IDEMPOTENCY_KEY_INVALID',
      )
    })

    t.test('a replayed API key creation returns the key again, which is never stored in clear', async (t) => {
      const headers = { 'idempotency-key': `key-once-${kind}` }
      const first = await k.req('POST', '/v1/api-keys', {
        token: a.token,
        headers,
        body: { name: 'idem-key', permissions: ['users.read'] },
      })
      const again = await k.req('POST', '/v1/api-keys', {
        token: a.token,
        headers,
        body: { name: 'idem-key', permissions: ['users.read'] },
      })
      t.equal(again.body.key, first.body.key)
      const secret = first.body.key.slice('trk_'.length + 33)
      const stored = await k.ownerSql('select response_body from idempotency_keys where key = ?', [`key-once-${kind}`])
      t.equal(stored.length, 1)
      t.notOk(stored[0].response_body.includes(secret), 'encrypted at rest')
      t.equal((await k.ownerSql(`select count(*)::int as n from api_keys where name = 'idem-key'`))[0].n, 1)
    })

    t.test('OpenAPI document and docs page describe every route', async (t) => {
      const doc = await k.req('GET', '/openapi.json')
      t.equal(doc.status, 200)
      t.equal(doc.body.openapi, '3.1.0')
      for (const path of [
        '/v1/auth/login',
        '/v1/auth/refresh',
        '/v1/auth/logout',
        '/v1/me',
        '/v1/users',
        '/v1/roles',
        '/v1/api-keys',
        '/v1/tenants',
        '/v1/partners',
        '/v1/audit',
      ])
        t.ok(doc.body.paths[path], path)
      t.ok(
        doc.body.paths['/v1/roles'].post.requestBody.content['application/json'].schema,
        'request schemas are published',
      )
      const docs = await k.req('GET', '/docs/')
      t.equal(docs.status, 200)
      t.match(docs.body, /swagger/i)
    })

    t.test('health, readiness and metrics', async (t) => {
      t.same((await k.req('GET', '/healthz')).body, { status: 'ok' })
      t.same((await k.req('GET', '/readyz')).body, { status: 'ready' })
      const m = await k.req('GET', '/metrics')
      t.equal(m.status, 200)
      t.match(m.body, /trellis_http_request_duration_seconds_bucket\{.*route="\/v1\/roles"/)
      t.match(m.body, /trellis_process_cpu_seconds_total/)
    })

    t.test('every response carries a request id, echoing a sane one given', async (t) => {
      const r = await k.req('GET', '/healthz', { headers: { 'x-request-id': 'trace-me-123' } })
      t.equal(r.headers['x-request-id'], 'trace-me-123')
      const r2 = await k.req('GET', '/healthz', { headers: { 'x-request-id': 'bad id with spaces\n' } })
      t.not(r2.headers['x-request-id'], 'bad id with spaces\n')
    })
  })
}

for (const kind of DB_KINDS)
  t.test(`rate limits apply per tenant on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind, { rateLimitPerMinute: 5 })
    const a = await createTenantWithAdmin(k, 'rl-a')
    const b = await createTenantWithAdmin(k, 'rl-b')
    const statuses: number[] = []
    for (let i = 0; i < 7; i++) statuses.push((await k.req('GET', '/v1/me', { token: a.token })).status)
    t.same(statuses.slice(0, 5), [200, 200, 200, 200, 200])
    const first = await k.req('GET', '/v1/me', { token: b.token })
    t.equal(first.headers['x-ratelimit-limit'], '5')
    t.equal(first.headers['x-ratelimit-remaining'], '4', 'tenant b has used one of its five')
    const limited = await k.req('GET', '/v1/me', { token: a.token })
    t.equal(limited.status, 429)
    t.equal(limited.body.code, 'KRN_ERR_RATE_LIMITED')
    t.ok(Number(limited.headers['retry-after']) > 0)
    t.equal((await k.req('GET', '/v1/me', { token: b.token })).status, 200, 'another tenant is not affected')
    const anonymous = []
    for (let i = 0; i < 6; i++) anonymous.push((await k.req('GET', '/v1/me')).status)
    // Sign-ins made above came from the same address and count too: the window fills within six.
    t.equal(anonymous.at(-1), 429, 'callers without credentials are counted by address')
    t.ok(anonymous.every((s) => s === 401 || s === 429))
    const health = await k.req('GET', '/healthz')
    t.equal(health.status, 200, 'routes configured with rateLimit: false (health, metrics) are never limited')
    t.equal(health.headers['x-ratelimit-limit'], undefined)
  })
