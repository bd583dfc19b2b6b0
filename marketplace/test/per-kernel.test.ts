// The marketplace holds per-kernel state: two kernels in one process each have their own checks
// worker, closing one leaves the other's working, and one marketplace never serves two kernels.
import t from 'tap'
import { DB_KINDS, testEmbeddedTemplate } from '../../core/test/helpers/test-kernel.js'
import { createKernel, loadConfig } from '@trellis/core'
import { createMarketplace } from '../src/index.js'
import { startMarketKernel } from './fixtures/kernel.js'
import { createPartner, publish } from './fixtures/publishing-suite.js'
import { manifestOf, newSigner, realPackage } from './fixtures/packages.js'

for (const kind of DB_KINDS)
  t.test(`two kernels in one process are independent (${kind})`, async (t) => {
    const fast = { pollMs: 50, maxPollMs: 200 }
    const a = await startMarketKernel(t, kind, { plugins: { sandboxWorkers: 1 } }, { checks: fast })
    const b = await startMarketKernel(t, kind, { plugins: { sandboxWorkers: 1 } }, { checks: fast })
    t.ok(a.market.checks && b.market.checks, 'each kernel runs a checks worker')
    t.not(a.market.checks, b.market.checks, 'its own')

    await a.kernel.close()

    // B's background worker — not a drain called by the test — checks what is published on B.
    const acme = await createPartner(b, 'acme-per-kernel')
    t.equal(
      (await b.req('POST', '/v1/marketplace/scopes', { token: acme.token, body: { scope: '@acme' } })).status,
      201,
    )
    const signer = await newSigner()
    const key = await b.req('POST', '/v1/marketplace/keys', {
      token: acme.token,
      body: { name: 'ci', publicKey: signer.publicKeyPem },
    })
    t.equal(key.status, 201)
    const r = await publish(
      b,
      acme.token,
      '@acme/notes',
      await realPackage(signer, await manifestOf('@acme/notes', '1.0.0')),
    )
    t.equal(r.status, 202, JSON.stringify(r.body))
    let status = 'checking'
    for (let i = 0; i < 600 && status === 'checking'; i++) {
      await new Promise((res) => setTimeout(res, 50))
      ;[{ status }] = await b.ownerSql<{ status: string }>('select status from plugin_versions where id = ?', [
        r.body.id,
      ])
    }
    t.equal(status, 'in_review', "closing kernel A did not stop kernel B's checks worker")
  })

t.test('one marketplace serves one kernel', async (t) => {
  const market = createMarketplace({ checks: false })
  const env = { LOG_LEVEL: 'silent', TRELLIS_SECRET_KEY: 'a'.repeat(64), TRELLIS_DATA_DIR: '/tmp/unused', PORT: '0' }
  const embeddedTemplate = await testEmbeddedTemplate()
  const first = await createKernel({
    config: loadConfig(env),
    embeddedDir: 'memory://',
    embeddedTemplate,
    migrate: true,
    extensions: [market],
  })
  t.teardown(() => first.close())
  await t.rejects(
    createKernel({
      config: loadConfig(env),
      embeddedDir: 'memory://',
      embeddedTemplate,
      migrate: true,
      extensions: [market],
    }),
    { code: 'KRN_ERR_CONFIG_INVALID' },
  )
})
