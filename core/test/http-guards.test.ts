import t from 'tap'
import { DB_KINDS, startTestKernel, createTenantWithAdmin, addUser } from './helpers/test-kernel.js'
import { createMarketplace } from '@trellis/marketplace'

// Denials are tallied per window of this clock: the test holds it still while it makes its
// requests, then moves it past the window's end so the background flush writes the tally.
let clock = Date.UTC(2026, 0, 1, 12, 0, 0)
const WINDOW = 60_000

for (const kind of DB_KINDS)
  t.test(`who may call is settled before the body is looked at on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind, {
      extensions: [createMarketplace()],
      deniedRequests: { windowMs: WINDOW, flushMs: 25, now: () => clock },
    })
    const a = await createTenantWithAdmin(k, 'guards-a')
    const member = await addUser(k, a.token, 'member@guards-a.test', 'tenant_member')
    const notUuid = 'not-a-uuid'

    // Each has a body (or parameters) that break the route's schema.
    const attempts: Array<{ name: string; method: string; url: string; body: unknown; table: string }> = [
      {
        name: 'define a role',
        method: 'POST',
        url: '/v1/roles',
        body: { name: 1, permissions: 'all', extra: true },
        table: 'roles',
      },
      {
        name: 'create a webhook',
        method: 'POST',
        url: '/v1/webhooks',
        body: { url: 'not a url', types: 'nope' },
        table: 'webhook_endpoints',
      },
      { name: 'create a tenant', method: 'POST', url: '/v1/tenants', body: { slug: '!!', admin: 7 }, table: 'tenants' },
      {
        name: 'create an API key',
        method: 'POST',
        url: '/v1/api-keys',
        body: { permissions: 'all' },
        table: 'api_keys',
      },
      {
        name: 'approve a marketplace version',
        method: 'POST',
        url: `/v1/marketplace/versions/${notUuid}/approve`,
        body: { reason: 42, more: [] },
        table: 'plugin_versions',
      },
    ]
    const counts = async () =>
      Object.fromEntries(
        await Promise.all(
          attempts.map(async (x) => [
            x.table,
            Number((await k.ownerSql(`select count(*)::int as n from ${x.table}`))[0].n),
          ]),
        ),
      )
    const before = await counts()

    t.test('no credentials and a bad body: 401, not a description of the schema', async (t) => {
      for (const x of attempts) {
        const r = await k.req(x.method, x.url, { body: x.body })
        t.equal(r.status, 401, x.name)
        t.equal(r.body.code, 'AUTH_ERR_UNAUTHENTICATED', x.name)
        t.notOk(r.body.problems, `${x.name}: no schema problems told`)
      }
      // A route that checks its permission in its handler still needs a caller first.
      const install = await k.req('POST', '/v1/installations', { body: { plugin: 7 } })
      t.equal(install.body.code, 'AUTH_ERR_UNAUTHENTICATED')
      t.equal((await k.req('HEAD', '/v1/audit')).status, 401, 'HEAD routes carry the same guard')
      t.equal(
        (await k.req('GET', '/v1/branding')).status,
        200,
        'a route that declares itself public (security: []) stays open',
      )
    })

    t.test('a caller without the permission and a bad body: 403', async (t) => {
      for (const x of attempts) {
        const r = await k.req(x.method, x.url, { token: member.token, body: x.body })
        t.equal(r.status, 403, x.name)
        t.equal(r.body.code, 'AUTH_ERR_FORBIDDEN', x.name)
      }
      t.equal(
        (await k.req('HEAD', '/v1/audit', { token: member.token })).status,
        403,
        'HEAD routes carry the same guard',
      )
    })

    t.test('the same bad bodies from a caller who may: 400, so the cases above failed for their reason', async (t) => {
      const r = await k.req('POST', '/v1/roles', { token: a.token, body: attempts[0]!.body })
      t.equal(r.status, 400)
      t.equal(r.body.code, 'KRN_ERR_VALIDATION_FAILED')
    })

    t.test('nothing was written', async (t) => {
      t.same(await counts(), before)
    })

    t.test('responses to credentialed requests are never cached; public ones may be', async (t) => {
      for (const [url, token] of [
        ['/v1/me', a.token],
        ['/v1/users', a.token],
        ['/v1/users', member.token],
        ['/v1/me', 'not-a-token'],
      ] as const) {
        const r = await k.req('GET', url, { token })
        t.equal(r.headers['cache-control'], 'no-store', `${url} (${r.status})`)
        t.match(String(r.headers.vary), /Authorization/i, `${url} (${r.status})`)
      }
      const login = await k.req('POST', '/v1/auth/login', { body: { email: a.email, password: a.password } })
      t.equal(login.status, 200)
      t.equal(login.headers['cache-control'], 'no-store', 'tokens from sign-in')
      const refresh = await k.req('POST', '/v1/auth/refresh', { body: { refreshToken: login.body.refreshToken } })
      t.equal(refresh.status, 200)
      t.equal(refresh.headers['cache-control'], 'no-store', 'tokens from a refresh')
      t.equal((await k.req('GET', '/healthz')).headers['cache-control'], undefined)
    })

    t.test(
      'refused requests are audited as one entry per caller, route and window, and counted in /metrics',
      async (t) => {
        const deniedMetric = async () => {
          const text = String((await k.req('GET', '/metrics')).body)
          const line = text
            .split('\n')
            .find((l) => l.startsWith('trellis_http_denied_total{code="AUTH_ERR_FORBIDDEN"}'))
          return line ? Number(line.split(' ').pop()) : 0
        }
        const metricBefore = await deniedMetric()
        const N = 25
        for (let i = 0; i < N; i++) t.equal((await k.req('GET', '/v1/audit', { token: member.token })).status, 403)
        t.equal(await deniedMetric(), metricBefore + N, 'every refusal counted, by code')
        clock += WINDOW
        const entries = async () =>
          k.ownerSql<{ actor_id: string; target_id: string; data: any }>(
            `select actor_id, target_id, data from audit_log where tenant_id = ?::uuid and action = 'security.request.denied' and target_id = 'GET /v1/audit'`,
            [a.orgId],
          )
        let rows = await entries()
        for (let i = 0; i < 400 && rows.length === 0; i++) {
          await new Promise((r) => setTimeout(r, 25))
          rows = await entries()
        }
        t.equal(rows.length, 1, 'one entry, not one per request')
        t.equal(rows[0]!.actor_id, member.user.id)
        t.equal(rows[0]!.data.count, N)
        t.equal(rows[0]!.data.code, 'AUTH_ERR_FORBIDDEN')
        // The tenant's admin reads it through the API like any other audit entry.
        const seen = await k.req('GET', '/v1/audit?action=security.request.denied', { token: a.token })
        t.equal(seen.status, 200)
        t.ok(seen.body.items.some((e: any) => e.data.count === N && e.target?.id === 'GET /v1/audit'))
      },
    )
  })
