/**
 * `trellis-plugin dev` as a developer meets it: the plugin from the `create` template served by a
 * local kernel; the printed token is an API key that lasts the session and reaches the plugin's
 * route; the start says how to receive webhooks locally; and saving the manifest the way editors
 * do (a new file renamed over the old one) reloads the plugin every time, not only the first.
 * The start loads the migrated database cached by an earlier start (or makes that cache), and
 * says so; the next start loads the same file.
 */
import t from 'tap'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { runDev } from '../src/dev-server.js'
import { templateFiles } from '../src/cli/template.js'
import { runCli } from '../src/cli/main.js'
import { loadDevKernel, type DevKernel } from '../src/dev-kernel.js'
import { TEST_TEMPLATE_DIR } from '../../core/test/helpers/test-kernel.js'

t.test('dev: a lasting token, the webhook hint, and reloads across atomic saves of the manifest', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-dev-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  for (const [file, text] of Object.entries(templateFiles({ name: '@acme/devloop', description: 'Dev loop' }))) {
    await mkdir(dirname(join(dir, file)), { recursive: true })
    await writeFile(join(dir, file), text)
  }
  const lines: string[] = []
  const reloads: Array<{ ok: boolean; version?: string; error?: string }> = []
  const waiters: Array<() => void> = []
  const ac = new AbortController()
  const started = Date.now()
  let readyMs = 0
  const ready = new Promise<{ url: string; basePath: string; token: string; kernel: DevKernel }>((resolve) => {
    const done = runDev({
      dir,
      port: 0,
      // The cache the rest of the suite's embedded databases start from: made once per schema.
      cacheDir: TEST_TEMPLATE_DIR,
      log: (l) => lines.push(l),
      signal: ac.signal,
      onReady: (info) => {
        readyMs = Date.now() - started
        resolve(info)
      },
      onReload: (r) => {
        reloads.push(r)
        for (const w of waiters.splice(0)) w()
      },
    })
    t.teardown(async () => {
      ac.abort()
      await done
    })
  })
  const info = await ready
  t.comment(`ready in ${readyMs} ms`)
  const out = lines.join('\n')

  const { database } = info.kernel
  t.equal(database.kind, 'embedded')
  t.ok(database.template?.startsWith(TEST_TEMPLATE_DIR), `its database came from the cache: ${database.template}`)
  t.ok(existsSync(database.template!), 'which is kept for the next start')
  t.match(
    out,
    database.templateMade
      ? `database: embedded, migrated once and cached in ${database.template}`
      : `database: embedded, loaded from the cache ${database.template}`,
    'the start says where its database came from',
  )
  t.match(out, /ready in \d+\.\d s/, 'and how long the start took')

  t.match(info.token, /^trk_/, 'the dev token is an API key, which does not expire after 15 minutes')
  t.match(out, `curl -H "Authorization: Bearer ${info.token}"`, 'the printed command uses it')
  const res = await fetch(`${info.url}${info.basePath}/items`, {
    method: 'POST',
    headers: { authorization: `Bearer ${info.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bolt', qty: 1 }),
  })
  t.equal(res.status, 201, 'and reaches the plugin route')

  // `trellis-plugin logs` in the plugin's directory finds the running dev server by itself.
  let stdout = ''
  const code = await runCli(['logs', '--dir', dir, '--json'], { stdout: (s) => (stdout += s), stderr: () => {} })
  t.equal(code, 0, stdout)
  const logs = JSON.parse(stdout) as {
    plugin: string
    invocations: Array<{ entryName: string; outcome: string; logs: Array<{ message: string }> }>
  }
  t.equal(logs.plugin, '@acme/devloop')
  const route = logs.invocations.find((i) => i.entryName === 'POST /items')
  t.ok(route, `the route's invocation is listed: ${JSON.stringify(logs.invocations.map((i) => i.entryName))}`)
  t.equal(route?.outcome, 'ok')
  t.match(route?.logs, [{ message: 'item created' }], 'with its log lines')
  t.match(out, /webhooks: restart with --egress-allow 127\.0\.0\.1/, 'says how to receive webhooks locally')
  t.match(out, /"types":\["devloop\.item\.created"\]/, 'with the events the plugin emits')
  t.match(out, `${info.url}/v1/webhooks`)

  const manifestPath = join(dir, 'trellis.plugin.json')
  const atomicSave = async (description: string) => {
    const m = JSON.parse(await readFile(manifestPath, 'utf8'))
    m.description = description
    const next = new Promise<void>((r) => waiters.push(r))
    await writeFile(`${manifestPath}.tmp`, JSON.stringify(m, null, 2))
    await rename(`${manifestPath}.tmp`, manifestPath)
    await next
  }
  await atomicSave('first save')
  await atomicSave('second save')
  t.equal(reloads.length, 2, 'both saves reloaded the plugin')
  t.ok(
    reloads.every((r) => r.ok),
    JSON.stringify(reloads),
  )
})

t.test('the next dev start loads the cached database instead of migrating a new one', async (t) => {
  const startDevKernel = await loadDevKernel()
  const kernel = await startDevKernel({ cacheDir: TEST_TEMPLATE_DIR })
  t.teardown(() => kernel.close())
  t.equal(kernel.database.templateMade, false, 'the cache was there: nothing was migrated from empty')
  t.ok(kernel.database.template?.startsWith(TEST_TEMPLATE_DIR))
  const me = await kernel.request('GET', '/v1/me')
  t.equal(me.status, 200, 'and the kernel serves its tenant admin')
})
