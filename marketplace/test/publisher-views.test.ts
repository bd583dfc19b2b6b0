// What a publisher reads of its own work (ADR 0088), on each database: its versions in every
// state, newest first and paged, with checks and review decisions; its plugin's health across
// tenants per version (aggregates only). A tenant, another partner or a bad window is refused;
// a tenant cannot list past its partner's channel catalog.
import t from 'tap'
import { DB_KINDS, createTenantWithAdmin } from '../../core/test/helpers/test-kernel.js'
import { eventually } from '../../core/test/helpers/receiver.js'
import { startMarketKernel } from './fixtures/kernel.js'
import { checked, createPartner, publish } from './fixtures/publishing-suite.js'
import { manifestOf, newSigner, realPackage } from './fixtures/packages.js'

for (const kind of DB_KINDS) {
  t.test(`a publisher's versions and health on ${kind}`, async (t) => {
    const k = await startMarketKernel(t, kind, { plugins: { sandboxWorkers: 1 } })
    const acme = await createPartner(k, 'views-acme')
    const other = await createPartner(k, 'views-other')
    const shop = await createTenantWithAdmin(k, 'views-shop', { partnerId: acme.id })
    const signer = await newSigner()
    t.equal(
      (await k.req('POST', '/v1/marketplace/scopes', { token: acme.token, body: { scope: '@views' } })).status,
      201,
    )
    const key = await k.req('POST', '/v1/marketplace/keys', {
      token: acme.token,
      body: { name: 'release', publicKey: signer.publicKeyPem },
    })
    t.equal(key.status, 201)
    const send = async (version: string) => {
      const r = await publish(
        k,
        acme.token,
        '@views/notes',
        await realPackage(signer, await manifestOf('@views/notes', version)),
      )
      t.equal(r.status, 202, JSON.stringify(r.body))
      await checked(k, r.body.id)
      return r.body.id as string
    }
    const v1 = await send('1.0.0')
    t.equal(
      (await k.req('POST', `/v1/marketplace/versions/${v1}/approve`, { token: k.adminToken, body: { reason: 'fine' } }))
        .status,
      200,
    )
    const v2 = await send('1.1.0')

    await t.test('versions: every state, newest first, paged; only the publisher reads them', async (t) => {
      const all = await k.req('GET', '/v1/marketplace/publisher/versions', { token: acme.token })
      t.equal(all.status, 200)
      t.same(
        all.body.items.map((v: { id: string; status: string }) => [v.id, v.status]),
        [
          [v2, 'in_review'],
          [v1, 'approved'],
        ],
      )
      t.match(all.body.items[1], { review: { decision: 'approved', reason: 'fine' } })
      t.ok(
        all.body.items[0].checks.some(
          (c: { name: string; status: string }) => c.name === 'signature' && c.status === 'passed',
        ),
        'with its check results',
      )
      const first = await k.req('GET', '/v1/marketplace/publisher/versions?limit=1', { token: acme.token })
      t.same(
        first.body.items.map((v: { id: string }) => v.id),
        [v2],
      )
      const second = await k.req('GET', `/v1/marketplace/publisher/versions?limit=1&cursor=${first.body.nextCursor}`, {
        token: acme.token,
      })
      t.same(
        second.body.items.map((v: { id: string }) => v.id),
        [v1],
      )
      t.equal(second.body.nextCursor, null)
      t.same((await k.req('GET', '/v1/marketplace/publisher/versions', { token: other.token })).body.items, [])
      t.equal(
        (await k.req('GET', '/v1/marketplace/publisher/versions', { token: shop.token })).body.code,
        'AUTH_ERR_FORBIDDEN',
      )
    })

    await t.test('health: per version across tenants, for the publisher and the platform only', async (t) => {
      const manifest = await manifestOf('@views/notes', '1.0.0')
      const installed = await k.req('POST', '/v1/installations', {
        token: shop.token,
        body: { plugin: '@views/notes', version: '1.0.0', capabilities: manifest.capabilities },
      })
      t.equal(installed.status, 201, JSON.stringify(installed.body))
      t.equal((await k.req('GET', '/v1/x/notes/whoami', { token: shop.token })).status, 200)
      t.equal((await k.req('GET', '/v1/x/notes/whoami', { token: shop.token })).status, 200)
      const health = async (token: string, query = '') =>
        k.req('GET', `/v1/plugins/@views/notes/health${query}`, { token })
      const seen = await eventually(async () => {
        const r = await health(acme.token)
        return r.body.versions?.[0]?.invocations === 2 && r.body
      })
      t.equal(seen.hours, 24)
      t.match(seen.versions, [{ version: '1.0.0', invocations: 2, errors: 0, tenants: 1 }])
      t.ok(seen.versions[0].wallMsP95 >= seen.versions[0].wallMsP50, 'p95 is at least p50')
      t.same(Object.keys(seen.versions[0]).sort(), [
        'cpuMsAvg',
        'errors',
        'invocations',
        'lastAt',
        'tenants',
        'version',
        'wallMsP50',
        'wallMsP95',
      ])
      t.equal((await health(k.adminToken, '?hours=720')).body.versions[0].invocations, 2)
      for (const token of [shop.token, other.token])
        t.equal((await health(token)).body.code, 'KRN_ERR_NOT_FOUND', 'nobody else learns of it')
      t.equal((await health(acme.token, '?hours=0')).body.code, 'KRN_ERR_VALIDATION_FAILED')
    })

    await t.test('a tenant cannot list past its partner catalog; the partner can', async (t) => {
      const put = await k.req('PUT', '/v1/marketplace/catalog', {
        token: acme.token,
        body: { displayName: 'Views', mode: 'allow_list', plugins: [] },
      })
      t.equal(put.status, 200)
      const names = async (token: string) =>
        (await k.req('GET', '/v1/marketplace/plugins?uncurated=true', { token })).body.items.map(
          (p: { name: string }) => p.name,
        )
      t.same(await names(shop.token), [], "the tenant sees only its partner's (empty) catalog")
      t.same(await names(acme.token), ['@views/notes'], 'the partner sees what it may add')
    })
  })
}
