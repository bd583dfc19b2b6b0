// `trellis-plugin publish` against a real kernel with the marketplace, over real HTTP:
// pack and publish, publish a packed file, and the exit codes of each way it can go wrong.
import t from 'tap'
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runCli, EXIT } from '../src/cli/main.js'
import { startTestKernel } from '../../core/test/helpers/test-kernel.js'
import { createMarketplace } from '@trellis/marketplace'

const notes = fileURLToPath(new URL('../../core/test/fixtures/plugins/notes', import.meta.url))

async function cli(args: string[], cwd: string, env: Record<string, string | undefined> = {}) {
  let stdout = ''
  let stderr = ''
  const saved = { ...process.env }
  for (const [k, v] of Object.entries(env))
    if (v === undefined) delete process.env[k]
    else process.env[k] = v
  try {
    const code = await runCli(args, {
      cwd,
      stdinIsTTY: false,
      stdout: (s) => void (stdout += s),
      stderr: (s) => void (stderr += s),
    })
    return { code, stdout, stderr }
  } finally {
    for (const k of Object.keys(env))
      if (saved[k] === undefined) delete process.env[k]
      else process.env[k] = saved[k]
  }
}

t.test('trellis-plugin publish', async (t) => {
  const k = await startTestKernel(t, 'pglite', { extensions: [createMarketplace()] })
  const address = await k.kernel.listen()
  const url = typeof address === 'string' ? address : `http://127.0.0.1:${(address as { port: number }).port}`
  const root = await mkdtemp(join(tmpdir(), 'trellis-publish-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const dir = join(root, 'notes')
  await cp(notes, dir, { recursive: true })
  const keysDir = join(root, 'keys')

  // A partner with its scope, its registered key and an API key.
  const p = await k.req('POST', '/v1/partners', {
    token: k.adminToken,
    body: { name: 'acme', slug: 'acme', admin: { email: 'a@acme.test', name: 'a', password: 'password-of-acme' } },
  })
  t.equal(p.status, 201)
  const token = (await k.login('a@acme.test', 'password-of-acme')).token
  t.equal((await k.req('POST', '/v1/marketplace/scopes', { token, body: { scope: '@acme' } })).status, 201)
  const gen = await cli(['keys', 'generate', '--keys-dir', keysDir, '--json'], root)
  t.equal(gen.code, 0, gen.stderr)
  const keys = JSON.parse(gen.stdout)
  const reg = await k.req('POST', '/v1/marketplace/keys', {
    token,
    body: { name: 'laptop', publicKey: await readFile(keys.publicKeyPath, 'utf8') },
  })
  t.equal(reg.body.fingerprint, keys.fingerprint)
  const apiKey = (
    await k.req('POST', '/v1/api-keys', { token, body: { name: 'ci', permissions: ['plugins.publish'] } })
  ).body.key as string

  await t.test('usage: no URL or no API key is exit 2', async (t) => {
    const noUrl = await cli(['publish', '--dir', dir, '--key', keys.privateKeyPath, '--api-key', apiKey], root, {
      TRELLIS_URL: undefined,
    })
    t.equal(noUrl.code, EXIT.USAGE)
    t.match(noUrl.stderr, /SDK_ERR_USAGE/)
    const noKey = await cli(['publish', '--dir', dir, '--key', keys.privateKeyPath, '--url', url], root, {
      TRELLIS_API_KEY: undefined,
    })
    t.equal(noKey.code, EXIT.USAGE)
  })

  let tarball = ''
  await t.test('packs and publishes; prints the version id and that it awaits checks and review', async (t) => {
    const r = await cli(
      [
        'publish',
        '--dir',
        dir,
        '--key',
        keys.privateKeyPath,
        '--out',
        join(root, 'out'),
        '--changelog',
        'First release',
      ],
      root,
      { TRELLIS_URL: url, TRELLIS_API_KEY: apiKey },
    )
    t.equal(r.code, EXIT.OK, r.stderr)
    t.match(r.stdout, /published @acme\/notes@1\.0\.0 as version [0-9a-f-]{36}/)
    t.match(r.stdout, /awaits review/)
    const id = /version ([0-9a-f-]{36})/.exec(r.stdout)![1]
    const [row] = await k.ownerSql('select name, version, changelog, status from plugin_versions where id = ?', [id])
    t.match(row, { name: '@acme/notes', version: '1.0.0', changelog: 'First release' })
    tarball = join(root, 'out', 'acme-notes-1.0.0.tgz')
  })

  await t.test('refused by the checks is exit 3 with the marketplace code', async (t) => {
    const r = await cli(['publish', '--package', tarball, '--url', url, '--api-key', apiKey, '--json'], root)
    t.equal(r.code, EXIT.VALIDATION)
    const out = JSON.parse(r.stdout)
    t.equal(out.ok, false)
    t.equal(out.error.code, 'MKT_ERR_VERSION_NOT_MONOTONIC')
    t.same(out.error.details, { status: 409, kind: 'refused' })
  })

  await t.test('a package whose signature does not match is refused (exit 3)', async (t) => {
    const other = await cli(['keys', 'generate', '--keys-dir', join(root, 'other-keys'), '--json'], root)
    const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
    manifest.version = '1.1.0'
    const { writeFile } = await import('node:fs/promises')
    await writeFile(join(dir, 'trellis.plugin.json'), JSON.stringify(manifest, null, 2))
    const r = await cli(
      [
        'publish',
        '--dir',
        dir,
        '--key',
        JSON.parse(other.stdout).privateKeyPath,
        '--out',
        join(root, 'out'),
        '--url',
        url,
        '--api-key',
        apiKey,
      ],
      root,
    )
    t.equal(r.code, EXIT.VALIDATION)
    t.match(r.stderr, /MKT_ERR_SIGNATURE_INVALID/)
  })

  await t.test('--package publishes an already packed file (--json)', async (t) => {
    const packed = await cli(
      ['pack', '--dir', dir, '--key', keys.privateKeyPath, '--out', join(root, 'out'), '--json'],
      root,
    )
    t.equal(packed.code, 0, packed.stderr)
    const r = await cli(
      ['publish', '--package', JSON.parse(packed.stdout).tarballPath, '--url', url, '--api-key', apiKey, '--json'],
      root,
    )
    t.equal(r.code, EXIT.OK, r.stdout + r.stderr)
    const out = JSON.parse(r.stdout)
    t.match(out, { ok: true, name: '@acme/notes', version: '1.1.0', status: 'checking', fingerprint: keys.fingerprint })
  })

  await t.test('create → publish, as a new author would', async (t) => {
    const created = await cli(['create', '@acme/hello', '--yes', '--out', join(root, 'hello')], root)
    t.equal(created.code, 0, created.stderr)
    const r = await cli(['publish', '--dir', join(root, 'hello'), '--key', keys.privateKeyPath, '--json'], root, {
      TRELLIS_URL: url,
      TRELLIS_API_KEY: apiKey,
    })
    t.equal(r.code, EXIT.OK, r.stdout + r.stderr)
    const out = JSON.parse(r.stdout)
    t.match(out, { ok: true, name: '@acme/hello', version: '0.1.0', status: 'checking' })
    let view = await k.req('GET', '/v1/marketplace/plugins/@acme/hello/versions/0.1.0/checks', { token })
    for (let i = 0; i < 100 && view.body.status === 'checking'; i++) {
      await new Promise((r) => setTimeout(r, 100))
      view = await k.req('GET', '/v1/marketplace/plugins/@acme/hello/versions/0.1.0/checks', { token })
    }
    t.equal(
      view.body.status,
      'in_review',
      JSON.stringify(view.body.checks.filter((c: { status: string }) => c.status === 'failed')),
    )
  })

  await t.test('a bad API key is exit 4', async (t) => {
    const r = await cli(['publish', '--package', tarball, '--url', url, '--api-key', 'trk_nope', '--json'], root)
    t.equal(r.code, EXIT.AUTH)
    t.equal(JSON.parse(r.stdout).error.code, 'AUTH_ERR_INVALID_API_KEY')
  })

  await t.test('an unreachable marketplace is exit 5', async (t) => {
    const r = await cli(['publish', '--package', tarball, '--url', 'http://127.0.0.1:9', '--api-key', apiKey], root)
    t.equal(r.code, EXIT.NETWORK)
    t.match(r.stderr, /SDK_ERR_PUBLISH_UNREACHABLE/)
  })
})
