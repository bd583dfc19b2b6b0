// The checks survive a restart: a version published while no process ran the checks (or whose
// checker died) is checked by the next kernel that starts on the same database.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '@trellis/core'
// This test reads the database as its owner through core's internal context: the kernel from core's source.
import { createKernel, type Kernel } from '../../core/src/kernel.js'
import { createPlatformAdmin } from '../../core/src/bootstrap.js'
import { createTestDatabase, DB_KINDS, ADMIN } from '../../core/test/helpers/test-kernel.js'
import { createMarketplace, type MarketplaceOptions } from '../src/index.js'
import { manifestOf, multipart, newSigner, realPackage } from './fixtures/packages.js'

for (const kind of DB_KINDS) {
  t.test(`a version left in checking is checked after a restart (${kind})`, async (t) => {
    const env: NodeJS.ProcessEnv = {
      LOG_LEVEL: 'silent',
      TRELLIS_SECRET_KEY: randomBytes(32).toString('hex'),
      TRELLIS_DATA_DIR: '/tmp/trellis-test-unused',
      PORT: '0',
    }
    let embeddedDir: string | undefined
    if (kind === 'postgres') {
      const db = await createTestDatabase()
      t.teardown(db.drop)
      env.DATABASE_URL = db.url
    } else {
      embeddedDir = await mkdtemp(join(tmpdir(), 'mkt-restart-'))
      t.teardown(() => rm(embeddedDir!, { recursive: true, force: true }))
    }
    const start = (market: MarketplaceOptions = {}): Promise<Kernel> =>
      createKernel({
        config: loadConfig(env),
        embeddedDir,
        migrate: true,
        rateLimitPerMinute: 100_000,
        extensions: [createMarketplace(market)],
      })
    const req = async (k: Kernel, method: string, url: string, token?: string, body?: unknown) => {
      const res = await k.app.inject({
        method: method as 'GET',
        url,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        payload: body ? JSON.stringify(body) : undefined,
      })
      return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined }
    }

    // The first process does not run the checks (an API-only process).
    const first = await start({ checks: false })
    t.teardown(() => first.close())
    t.same(
      first.contributions.jobs.map((j) => j.name),
      [],
      'no checks worker in the first process',
    )
    await createPlatformAdmin(first.ctx, ADMIN)
    const admin = (await req(first, 'POST', '/v1/auth/login', undefined, ADMIN)).body.accessToken
    await req(first, 'POST', '/v1/partners', admin, {
      name: 'acme',
      slug: 'acme',
      admin: { email: 'a@acme.test', name: 'a', password: 'password-of-acme' },
    })
    const token = (
      await req(first, 'POST', '/v1/auth/login', undefined, { email: 'a@acme.test', password: 'password-of-acme' })
    ).body.accessToken
    t.equal((await req(first, 'POST', '/v1/marketplace/scopes', token, { scope: '@acme' })).status, 201)
    const signer = await newSigner()
    t.equal(
      (await req(first, 'POST', '/v1/marketplace/keys', token, { name: 'ci', publicKey: signer.publicKeyPem })).status,
      201,
    )
    const pkg = await realPackage(signer, await manifestOf('@acme/notes', '1.0.0'))
    const form = multipart([
      { name: 'signature', value: pkg.signature },
      { name: 'package', filename: 'p.tgz', content: pkg.tgz },
    ])
    const res = await first.app.inject({
      method: 'POST',
      url: '/v1/marketplace/plugins/@acme/notes/versions',
      headers: { authorization: `Bearer ${token}`, 'content-type': form.contentType },
      payload: form.payload,
    })
    t.equal(res.statusCode, 202, res.body)
    const id = JSON.parse(res.body).id as string
    await new Promise((r) => setTimeout(r, 300))
    const status = async (k: Kernel) =>
      (
        await k.ctx.db.asOwner((tx) =>
          tx.sql<{ status: string; checks: Array<{ name: string }> }>(
            'select status, checks from plugin_versions where id = ?::uuid',
            [id],
          ),
        )
      )[0]!
    t.equal((await status(first)).status, 'checking', 'nobody checked it')
    await first.close()

    // The next process to start picks it up.
    const second = await start()
    t.teardown(() => second.close())
    let row = await status(second)
    for (let i = 0; i < 200 && row.status === 'checking'; i++) {
      await new Promise((r) => setTimeout(r, 100))
      row = await status(second)
    }
    t.equal(row.status, 'in_review')
    t.ok(
      row.checks.some((c) => c.name === 'sandbox-load'),
      'the sandbox checks ran',
    )
    t.ok(
      row.checks.some((c) => c.name === 'signature'),
      'the upload checks are kept',
    )
  })
}
