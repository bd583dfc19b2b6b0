// Attacks on the marketplace's governance, made the way a hostile partner would: capabilities
// that reach internal hosts, look-alike scopes, subscriptions to the platform's events, and
// uploads whose bytes PostgreSQL or UTF-8 decoding would silently change. Each is refused with
// its code, stores nothing, and the refusal is audited.
import t from 'tap'
import { DB_KINDS, createTenantWithAdmin } from '../../core/test/helpers/test-kernel.js'
import { startMarketKernel } from './fixtures/kernel.js'
import { registerVersion } from '../../core/test/helpers/plugin-versions.js'
import { checked, counts, createPartner, publish } from './fixtures/publishing-suite.js'
import { craftedPackage, manifestOf, notesBuild, newSigner, properEntries, realPackage } from './fixtures/packages.js'

for (const kind of DB_KINDS)
  t.test(`submission attacks (${kind})`, async (t) => {
    // The host may reach 127.0.0.1 and erp.internal (the operator allow-listed them); nothing else internal.
    const k = await startMarketKernel(t, kind, {
      plugins: { sandboxWorkers: 1 },
      events: { egressAllow: ['127.0.0.1', 'erp.internal'] },
    })
    const acme = await createPartner(k, 'acme-attacks')
    const signer = await newSigner()
    t.equal(
      (await k.req('POST', '/v1/marketplace/scopes', { token: acme.token, body: { scope: '@acme' } })).status,
      201,
    )
    t.equal(
      (
        await k.req('POST', '/v1/marketplace/keys', {
          token: acme.token,
          body: { name: 'ci', publicKey: signer.publicKeyPem },
        })
      ).status,
      201,
    )
    const refusals = async () =>
      (
        await k.ownerSql<{ n: number }>(
          `select count(*)::int as n from audit_log where tenant_id = ? and action = 'marketplace.version.refused'`,
          [acme.id],
        )
      )[0]!.n
    let patch = 0
    const nextVersion = () => `1.0.${++patch}`

    await t.test(
      'http:fetch naming loopback, private, link-local or metadata hosts is refused at submission',
      async (t) => {
        const before = await counts(k)
        const audited = await refusals()
        const internal = [
          '169.254.169.254',
          '10.0.0.1:5432',
          '2852039166',
          '0xa9fea9fe',
          '0.0.0.0',
          '192.168.1.10',
          '172.16.0.5:8080',
          'metadata.google.internal',
          'db.internal',
          'redis',
          '127.0.0.1.nip.io.internal',
        ]
        for (const host of internal) {
          const m = await manifestOf('@acme/fetcher', nextVersion(), (m) =>
            m.capabilities.push(`http:fetch:api.example.com,${host}`),
          )
          const r = await publish(k, acme.token, '@acme/fetcher', await realPackage(signer, m))
          t.equal(r.status, 422, host)
          t.equal(r.body.code, 'MKT_ERR_CAPABILITY_INTERNAL_HOST', host)
        }
        for (const host of ['[::1]', '[fd00::1]', '::1']) {
          const m = await manifestOf('@acme/fetcher', nextVersion(), (m) => m.capabilities.push(`http:fetch:${host}`))
          const r = await publish(k, acme.token, '@acme/fetcher', await realPackage(signer, m))
          t.equal(r.body.code, 'MKT_ERR_MANIFEST_INVALID', `${host}: IPv6 literals are not hosts a capability may name`)
        }
        t.same(await counts(k), before, 'nothing was stored')
        t.equal(await refusals(), audited + internal.length + 3, 'every refusal is audited in the publisher chain')
        const allowListed = await manifestOf('@acme/fetcher', nextVersion(), (m) =>
          m.capabilities.push('http:fetch:127.0.0.1:8080,localhost:9000,erp.internal:8443,api.example.com'),
        )
        const ok = await publish(k, acme.token, '@acme/fetcher', await realPackage(signer, allowListed))
        t.equal(ok.status, 202, `an address the operator allow-listed is accepted: ${JSON.stringify(ok.body)}`)
        t.equal(ok.body.checks.find((c: any) => c.name === 'capabilities')?.status, 'passed')
      },
    )

    await t.test(
      'an approved version asking for an internal host is refused at grant: install and upgrade',
      async (t) => {
        const shop = await createTenantWithAdmin(k, 'shop-grants')
        const b = await notesBuild()
        const base = await manifestOf('@acme/granted', '1.0.0')
        await registerVersion(k, { manifest: base, code: b.code, sourceMap: b.sourceMap })
        const metadata = await manifestOf('@acme/granted', '1.1.0', (m) =>
          m.capabilities.push('http:fetch:169.254.169.254'),
        )
        await registerVersion(k, { manifest: metadata, code: b.code, sourceMap: b.sourceMap })
        const refused = await k.req('POST', '/v1/installations', {
          token: shop.token,
          body: { plugin: '@acme/granted', version: '1.1.0', capabilities: metadata.capabilities },
        })
        t.equal(refused.status, 422)
        t.equal(refused.body.code, 'PLG_ERR_CAPABILITY_NOT_GRANTABLE')
        t.equal(
          (await k.ownerSql(`select count(*)::int as n from plugin_installations where tenant_id = ?`, [shop.orgId]))[0]
            .n,
          0,
          'nothing was installed',
        )
        const inst = await k.req('POST', '/v1/installations', {
          token: shop.token,
          body: { plugin: '@acme/granted', version: '1.0.0', capabilities: base.capabilities },
        })
        t.equal(inst.status, 201, JSON.stringify(inst.body))
        const up = await k.req('POST', `/v1/installations/${inst.body.id}/upgrade`, {
          token: shop.token,
          body: { version: '1.1.0', capabilities: metadata.capabilities },
        })
        t.equal(up.body.code, 'PLG_ERR_CAPABILITY_NOT_GRANTABLE', 'an upgrade to it is refused too')
        const loopback = await manifestOf('@acme/granted', '1.2.0', (m) =>
          m.capabilities.push('http:fetch:127.0.0.1:8080'),
        )
        await registerVersion(k, { manifest: loopback, code: b.code, sourceMap: b.sourceMap })
        const allowed = await k.req('POST', `/v1/installations/${inst.body.id}/upgrade`, {
          token: shop.token,
          body: { version: '1.2.0', capabilities: loopback.capabilities },
        })
        t.equal(allowed.status, 200, `the allow-listed loopback address is grantable: ${JSON.stringify(allowed.body)}`)
        const reserved = await manifestOf('@acme/granted', '1.3.0', (m) =>
          m.capabilities.push('events:subscribe:kernel.**'),
        )
        await registerVersion(k, { manifest: reserved, code: b.code, sourceMap: b.sourceMap })
        const sub = await k.req('POST', `/v1/installations/${inst.body.id}/upgrade`, {
          token: shop.token,
          body: { version: '1.3.0', capabilities: reserved.capabilities },
        })
        t.equal(
          sub.body.code,
          'PLG_ERR_CAPABILITY_NOT_GRANTABLE',
          'a subscription to the kernel namespace is never granted',
        )
      },
    )

    await t.test(
      'code rewritten in the database together with its digest is refused at load and at install, audited',
      async (t) => {
        const shop = await createTenantWithAdmin(k, 'shop-tamper')
        const b = await notesBuild()
        const m = await manifestOf('@acme/tampered', '1.0.0')
        const v = await registerVersion(k, { manifest: m, code: b.code, sourceMap: b.sourceMap })
        const inst = await k.req('POST', '/v1/installations', {
          token: shop.token,
          body: { plugin: '@acme/tampered', version: '1.0.0', capabilities: m.capabilities },
        })
        t.equal(inst.status, 201, JSON.stringify(inst.body))
        const before = await k.req('GET', '/v1/x/tampered/whoami', { token: shop.token })
        t.equal(before.status, 200, 'the approved code runs')
        // A database writer (the owner) swaps in other code and makes the row consistent with it.
        const evil = `${b.code}\n;globalThis.__tampered = true\n`
        const { createHash } = await import('node:crypto')
        await k.ownerSql('update plugin_versions set code = ?, sha256 = ? where id = ?::uuid', [
          evil,
          createHash('sha256').update(evil).digest('hex'),
          v.id,
        ])
        // After a restart nothing is cached: forget what this process holds.
        k.kernel.ctx.plugins.versions.forget(v.id)
        k.kernel.ctx.plugins.forgetTenant(shop.orgId)
        const after = await k.req('GET', '/v1/x/tampered/whoami', { token: shop.token })
        t.equal(after.status, 503, JSON.stringify(after.body))
        t.equal(after.body.code, 'PLG_ERR_VERSION_UNVERIFIED')
        const other = await createTenantWithAdmin(k, 'shop-tamper-2')
        const install = await k.req('POST', '/v1/installations', {
          token: other.token,
          body: { plugin: '@acme/tampered', version: '1.0.0', capabilities: m.capabilities },
        })
        t.equal(install.body.code, 'PLG_ERR_VERSION_UNVERIFIED', 'and it cannot be installed')
        const audited = async () =>
          k.ownerSql(`select data from audit_log where action = 'plugin.version.unverified' and target_id = ?`, [v.id])
        for (let i = 0; i < 100 && (await audited()).length === 0; i++) await new Promise((r) => setTimeout(r, 100))
        const [entry] = await audited()
        t.ok(entry, 'the refusal is audited in the platform chain')
        t.equal(
          entry?.data.attested,
          createHash('sha256').update(b.code).digest('hex'),
          'naming the digest that was approved',
        )
        // Putting the approved code back makes it run again.
        await k.ownerSql('update plugin_versions set code = ?, sha256 = ? where id = ?::uuid', [
          b.code,
          createHash('sha256').update(b.code).digest('hex'),
          v.id,
        ])
        k.kernel.ctx.plugins.versions.forget(v.id)
        k.kernel.ctx.plugins.forgetTenant(shop.orgId)
        t.equal((await k.req('GET', '/v1/x/tampered/whoami', { token: shop.token })).status, 200)
      },
    )

    await t.test('look-alike scopes are refused; the platform may still assign them', async (t) => {
      const rival = await createPartner(k, 'rival-attacks')
      for (const scope of [
        '@tre11is',
        '@trellis-official',
        '@platf0rm',
        '@p1atform',
        '@trel-lis',
        '@admin',
        '@kerne1',
        '@rnarketplace',
        '@official',
        '@trellisapps',
        '@acrne',
        '@ac-me',
        '@4cme',
      ]) {
        const r = await k.req('POST', '/v1/marketplace/scopes', { token: rival.token, body: { scope } })
        t.equal(r.body.code, 'MKT_ERR_SCOPE_CONFUSABLE', scope)
      }
      t.equal(
        (await k.req('POST', '/v1/marketplace/scopes', { token: rival.token, body: { scope: '@trellis' } })).body.code,
        'MKT_ERR_SCOPE_RESERVED',
      )
      t.equal(
        (await k.req('POST', '/v1/marketplace/scopes', { token: rival.token, body: { scope: '@rival' } })).status,
        201,
        'an ordinary scope is claimed',
      )
      t.equal(
        (await k.req('POST', '/v1/marketplace/scopes', { token: rival.token, body: { scope: '@badminton-tools' } }))
          .status,
        201,
        'a short reserved word inside another word is no look-alike',
      )
      t.equal(
        (
          await k.req('POST', '/v1/marketplace/scopes', {
            token: k.adminToken,
            body: { scope: '@trellis-official', partnerId: rival.id },
          })
        ).status,
        201,
        'a platform admin assigns a look-alike of a reserved name',
      )
      t.equal(
        (await k.ownerSql(`select count(*)::int as n from marketplace_scopes where partner_id = ?`, [rival.id]))[0].n,
        3,
      )
    })

    await t.test(
      'subscriptions: the platform namespaces are refused, broad patterns are flagged in the review queue',
      async (t) => {
        for (const cap of [
          'events:subscribe:kernel.*',
          'events:subscribe:marketplace.version.*',
          'events:subscribe:kernel.membership.removed',
          'events:subscribe:audit.**',
          'events:subscribe:workflow.task.created',
        ]) {
          const m = await manifestOf('@acme/listener', nextVersion(), (m) => m.capabilities.push(cap))
          const r = await publish(k, acme.token, '@acme/listener', await realPackage(signer, m))
          t.equal(r.body.code, 'MKT_ERR_SUBSCRIPTION_RESERVED', cap)
        }
        const broad = await manifestOf('@acme/listener', nextVersion(), (m) =>
          m.capabilities.push(
            'events:subscribe:**',
            'events:subscribe:*.order.placed',
            'events:subscribe:granted.**',
            'events:subscribe:nobody.thing.happened',
          ),
        )
        const r = await publish(k, acme.token, '@acme/listener', await realPackage(signer, broad))
        t.equal(r.status, 202, JSON.stringify(r.body))
        const done = await checked(k, r.body.id)
        t.equal(done.status, 'in_review', 'warnings do not block: a reviewer decides')
        const queue = await k.req('GET', '/v1/marketplace/reviews?limit=100', { token: k.adminToken })
        const item = queue.body.items.find((i: any) => i.id === r.body.id)
        const check = item.checks.find((c: any) => c.name === 'event-subscriptions')
        t.equal(check.status, 'warning')
        t.same(
          check.details.findings.map((f: any) => [f.rule, f.pattern]).sort(),
          [
            ['any-namespace', '*.order.placed'],
            ['everything', '**'],
            ['other-namespace-wildcard', 'granted.**'],
            ['unknown-namespace', 'nobody.thing.happened'],
          ],
          'the review queue shows each broad or foreign subscription; its own passes',
        )
      },
    )

    await t.test(
      'NUL bytes and bytes that are not UTF-8: 422 with a stable code, audited, nothing stored',
      async (t) => {
        const before = await counts(k)
        const audited = await refusals()
        const m = await manifestOf('@acme/bytes', '1.0.0')
        const code = (await notesBuild()).code
        const cases: Array<[string, () => Promise<{ status: number; body: any }>, string]> = [
          [
            'a NUL byte in the bundle',
            async () =>
              publish(k, acme.token, '@acme/bytes', craftedPackage(signer, await properEntries(m, `${code}\n// \0`))),
            'MKT_ERR_NUL_BYTE',
          ],
          [
            'a NUL in a manifest string',
            async () =>
              publish(k, acme.token, '@acme/bytes', await realPackage(signer, { ...m, description: 'evil\u0000' })),
            'MKT_ERR_NUL_BYTE',
          ],
          [
            'a NUL in the changelog',
            async () =>
              publish(k, acme.token, '@acme/bytes', await realPackage(signer, m), { changelog: 'fixes\u0000' }),
            'MKT_ERR_NUL_BYTE',
          ],
          [
            'a bundle that is not UTF-8',
            async () =>
              publish(
                k,
                acme.token,
                '@acme/bytes',
                craftedPackage(
                  signer,
                  await properEntries(
                    m,
                    Buffer.concat([
                      Buffer.from(code),
                      Buffer.from([0x0a, 0x2f, 0x2f, 0xff, 0xfe, 0x0a]),
                    ]) as unknown as string,
                  ),
                ),
              ),
            'MKT_ERR_NOT_UTF8',
          ],
        ]
        for (const [name, run, expected] of cases) {
          const r = await run()
          t.equal(r.status, 422, `${name}: ${JSON.stringify(r.body)}`)
          t.equal(r.body.code, expected, name)
        }
        t.same(await counts(k), before, 'nothing was stored')
        t.equal(await refusals(), audited + cases.length, 'each refusal is audited')
      },
    )

    await t.test('a multipart body without its closing boundary is a 400, audited', async (t) => {
      const audited = await refusals()
      const pkg = await realPackage(signer, await manifestOf('@acme/bytes', '1.0.1'))
      const boundary = '----trellis-unclosed'
      const payload = Buffer.concat([
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="signature"\r\n\r\n${pkg.signature}\r\n--${boundary}\r\nContent-Disposition: form-data; name="package"; filename="p.tgz"\r\nContent-Type: application/gzip\r\n\r\n`,
        ),
        pkg.tgz,
      ])
      const res = await k.kernel.app.inject({
        method: 'POST',
        url: '/v1/marketplace/plugins/@acme/bytes/versions',
        headers: { authorization: `Bearer ${acme.token}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
        payload,
      })
      t.equal(res.statusCode, 400, res.body)
      t.equal(JSON.parse(res.body).code, 'MKT_ERR_UPLOAD_INVALID')
      t.equal(await refusals(), audited + 1)
    })
  })
