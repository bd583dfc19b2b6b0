// The marketplace as its users meet it: a partner's developer creates, packs and publishes a
// plugin with the CLI; the checks run; a platform admin approves it through the API; a tenant
// admin installs it with consent and its route answers; a new version that asks for one more
// capability waits for re-consent; the tenant rolls back; the platform blocks the version.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DB_KINDS, createTenantWithAdmin } from '../core/test/helpers/test-kernel.js'
import { startMarketKernel } from '../marketplace/test/fixtures/kernel.js'
import { eventually } from '../core/test/helpers/receiver.js'

const bin = fileURLToPath(new URL('../plugin-sdk/bin/trellis-plugin.js', import.meta.url))
const repoModules = fileURLToPath(new URL('../node_modules', import.meta.url))

function cli(args: string[], cwd: string): Promise<{ code: number; out: string; stdout: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [bin, ...args], { cwd, env: process.env }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr, stdout }),
    ),
  )
}

for (const kind of DB_KINDS)
  t.test(
    `publish → review → install with consent → upgrade waits for re-consent → rollback → block (${kind})`,
    async (t) => {
      const k = await startMarketKernel(t, kind, { plugins: { sandboxWorkers: 1 } })
      const url = String(await k.kernel.listen()).replace('[::1]', '127.0.0.1')
      const root = await mkdtemp(join(tmpdir(), 'trellis-market-'))
      t.teardown(() => rm(root, { recursive: true, force: true }))
      const dir = join(root, 'hello')
      const keysDir = join(root, 'keys')

      // The partner: its scope, its developer's signing key, an API key for publishing.
      const partner = await k.req('POST', '/v1/partners', {
        token: k.adminToken,
        body: {
          name: 'Acme',
          slug: 'acme',
          admin: { email: 'dev@acme.test', name: 'Dev', password: 'password-of-acme-dev' },
        },
      })
      t.equal(partner.status, 201)
      const partnerToken = (await k.login('dev@acme.test', 'password-of-acme-dev')).token
      t.equal(
        (await k.req('POST', '/v1/marketplace/scopes', { token: partnerToken, body: { scope: '@acme' } })).status,
        201,
      )
      const keys = JSON.parse((await cli(['keys', 'generate', '--keys-dir', keysDir, '--json'], root)).stdout)
      t.equal(
        (
          await k.req('POST', '/v1/marketplace/keys', {
            token: partnerToken,
            body: { name: 'laptop', publicKey: await readFile(keys.publicKeyPath, 'utf8') },
          })
        ).status,
        201,
      )
      const apiKey = (
        await k.req('POST', '/v1/api-keys', {
          token: partnerToken,
          body: { name: 'ci', permissions: ['plugins.publish'] },
        })
      ).body.key as string

      // create → pack → publish, with the CLI.
      t.equal((await cli(['create', '@acme/hello', '--yes'], root)).code, 0)
      await mkdir(join(dir, 'node_modules', '@trellis'), { recursive: true })
      for (const p of ['plugin-sdk', 'core'])
        await symlink(join(repoModules, '@trellis', p), join(dir, 'node_modules', '@trellis', p))
      const publish = async (changelog: string) => {
        const r = await cli(
          [
            'publish',
            '--key',
            keys.privateKeyPath,
            '--url',
            url,
            '--api-key',
            apiKey,
            '--changelog',
            changelog,
            '--json',
          ],
          dir,
        )
        t.equal(r.code, 0, r.out)
        return JSON.parse(r.stdout) as { versionId?: string; id?: string; version: string }
      }
      const reviewed = async (version: string) =>
        eventually(async () => {
          const q = await k.req('GET', '/v1/marketplace/reviews', { token: k.adminToken })
          return q.body.items.find((v: any) => v.name === '@acme/hello' && v.version === version)
        }, 30_000)
      await publish('First release')
      const first = await reviewed('0.1.0')
      t.ok(first.checks.length > 0, 'the checks ran and are shown to the reviewer')
      t.ok(
        first.checks.every((c: any) => c.status !== 'failed'),
        'no check failed',
      )

      const tenant = await createTenantWithAdmin(k, 'buyer')
      const other = await createTenantWithAdmin(k, 'bystander')
      const install = (version: string, capabilities: string[]) =>
        k.req('POST', '/v1/installations', {
          token: tenant.token,
          body: { plugin: '@acme/hello', version, capabilities },
        })
      const capabilities: string[] = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8')).capabilities
      t.equal(
        (await install('0.1.0', capabilities)).body.code,
        'PLG_ERR_VERSION_NOT_APPROVED',
        'nothing installs before approval',
      )
      t.equal(
        (
          await k.req('POST', `/v1/marketplace/versions/${first.id}/approve`, {
            token: k.adminToken,
            body: { reason: 'checks pass; capabilities fit' },
          })
        ).body.status,
        'approved',
      )

      const installed = await install('0.1.0', capabilities)
      t.equal(installed.status, 201, JSON.stringify(installed.body))
      const item = await k.req('POST', '/v1/x/hello/items', { token: tenant.token, body: { name: 'bolt', qty: 3 } })
      t.equal(item.status, 201, 'the route answers for the tenant that installed it')
      t.equal(
        (await k.req('POST', '/v1/x/hello/items', { token: other.token, body: { name: 'bolt', qty: 3 } })).status,
        404,
        'and not for another',
      )

      // 0.2.0 asks for one more capability.
      const manifestPath = join(dir, 'trellis.plugin.json')
      const m = JSON.parse(await readFile(manifestPath, 'utf8'))
      await writeFile(
        manifestPath,
        JSON.stringify(
          { ...m, version: '0.2.0', capabilities: [...m.capabilities, 'http:fetch:api.example.com'] },
          null,
          2,
        ),
      )
      await publish('Calls the Example API')
      const second = await reviewed('0.2.0')
      t.same(
        second.diff.capabilities,
        { added: ['http:fetch:api.example.com'], removed: [] },
        'the reviewer sees the capability diff',
      )
      await k.req('POST', `/v1/marketplace/versions/${second.id}/approve`, {
        token: k.adminToken,
        body: { reason: 'the new host is the vendor API' },
      })

      const upgrade = await k.req('POST', `/v1/installations/${installed.body.id}/upgrade`, {
        token: tenant.token,
        body: { version: '0.2.0' },
      })
      t.equal(upgrade.status, 202, 'the upgrade waits for consent')
      t.same(upgrade.body.capabilities.added, ['http:fetch:api.example.com'])
      t.equal(
        (await k.req('GET', `/v1/installations/${installed.body.id}`, { token: tenant.token })).body.version,
        '0.1.0',
        'meanwhile the consented version serves',
      )
      const consented = await k.req('POST', `/v1/installations/${installed.body.id}/consent`, {
        token: tenant.token,
        body: { capabilities: [...capabilities, 'http:fetch:api.example.com'] },
      })
      t.equal(consented.body.version, '0.2.0')

      const rolledBack = await k.req('POST', `/v1/installations/${installed.body.id}/rollback`, {
        token: tenant.token,
        body: {},
      })
      t.equal(rolledBack.body.version, '0.1.0')
      t.same(rolledBack.body.capabilities, capabilities, 'back to the capabilities of 0.1.0')

      const blocked = await k.req('POST', `/v1/marketplace/versions/${first.id}/block`, {
        token: k.adminToken,
        body: { reason: 'a vulnerability in 0.1.0' },
      })
      t.equal(blocked.body.status, 'blocked')
      const refused = await k.req('POST', '/v1/x/hello/items', { token: tenant.token, body: { name: 'nut', qty: 1 } })
      t.equal(refused.status, 403)
      t.equal(refused.body.code, 'PLG_ERR_VERSION_BLOCKED')
      const told = await k.req('GET', '/v1/events?type=marketplace.version.blocked', { token: tenant.token })
      t.equal(told.body.items.length, 1, 'the tenant is told')
      const trail = await k.ownerSql(
        `select action from audit_log where tenant_id = ? and (action like 'plugin.%' or action like 'marketplace.%') order by id`,
        [tenant.orgId],
      )
      t.same(
        trail.map((r: any) => r.action).filter((a: string) => a !== 'plugin.capability.used'),
        [
          'plugin.installed',
          'plugin.upgrade_pending',
          'plugin.upgraded',
          'plugin.rolled_back',
          'marketplace.version.blocked',
        ],
        "every step is in the tenant's audit trail",
      )
    },
  )
