/**
 * `trellis-plugin dev`: a kernel on a throw-away embedded database with the plugin installed
 * for a dev tenant, listening; the plugin is rebuilt and reinstalled whenever its sources or
 * manifest change, and every invocation's log lines are streamed. With `warm`, the kernel is the
 * warm one kept running between runs (a tenant of its own for this session, served on the
 * requested port through a forwarding proxy); otherwise one started in this process.
 */
import { watch } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type BuildResult, buildPlugin } from './build.js'
import type { JsonValue } from './context.js'
import { loadDevKernel, type DevInvocation, type DevKernel } from './dev-kernel.js'
import { startDevProxy } from './dev-proxy.js'
import { openWarmTenant } from './dev-warm.js'

/** Options of {@link runDev}. */
export interface DevOptions {
  dir: string
  /** Port to listen on (0: any free port). */
  port: number
  settings?: Record<string, JsonValue>
  egressAllow?: string[]
  /** Human output. */
  log: (line: string) => void
  /** Stops the server when aborted. */
  signal: AbortSignal
  /**
   * Where the migrated embedded database is cached between starts (see `DevKernelOptions.cacheDir`);
   * default the user's cache directory.
   */
  cacheDir?: string | false
  /** Serve from the warm kernel kept running between runs (see `trellis-plugin dev-kernel`). */
  warm?: boolean
  /** The plugin as already built into dist/ (by the checks before the start): installed first instead of building again. */
  built?: BuildResult
  /** Called once the plugin is installed and the kernel listens. */
  onReady?: (info: { url: string; basePath: string; token: string; kernel: DevKernel }) => void
  /** Called after each reload (ok or failed). */
  onReload?: (result: { ok: boolean; version?: string; error?: string }) => void
}

/** Where a running dev server leaves its address and token for `trellis-plugin logs` (removed when it stops). */
export const DEV_SERVER_FILE = join('dist', 'dev-server.json')

/** One invocation as the dev server and `trellis-plugin logs` print it. */
export function formatInvocation(inv: DevInvocation): string {
  const head = `${inv.outcome === 'ok' ? 'ok ' : 'ERR'} ${inv.entryKind} ${inv.entryName} ${inv.wallMs.toFixed(1)} ms, ${inv.hostCalls} host call(s)${inv.errorCode ? ` ${inv.errorCode}` : ''}`
  const lines = inv.logs.map(
    (l) => `    ${l.level.padEnd(5)} ${l.message}${l.fields ? ` ${JSON.stringify(l.fields)}` : ''}`,
  )
  return [head, ...lines].join('\n')
}

/**
 * A token for the dev tenant's admin that lasts the whole session: an API key (`trk_…`) with the
 * admin's permissions, where a sign-in token would expire after 15 minutes. Falls back to the
 * sign-in token when the key cannot be made.
 */
async function sessionToken(kernel: DevKernel): Promise<string> {
  const me = await kernel.request('GET', '/v1/me')
  const permissions = (me.body as { permissions?: string[] } | null)?.permissions
  if (me.status !== 200 || !permissions) return kernel.tenant.token
  const key = await kernel.request('POST', '/v1/api-keys', { body: { name: 'trellis-plugin dev', permissions } })
  return key.status === 201 ? (key.body as { key: string }).key : kernel.tenant.token
}

/** How to get the plugin's events on this machine: a webhook to a local receiver. */
function webhookHint(manifest: Record<string, unknown>, url: string, token: string, egressAllow: string[]): string[] {
  const events = manifest.events as { emits?: Record<string, unknown> } | undefined
  const types = Object.keys(events?.emits ?? {})
  const local = egressAllow.some((h) => h === '127.0.0.1' || h === 'localhost')
  const body = JSON.stringify({ url: 'http://127.0.0.1:8080/hook', types: types.length ? types : ['*'] })
  return [
    `  webhooks: ${local ? '' : 'restart with --egress-allow 127.0.0.1, then '}send the events to a local receiver:`,
    `           curl -X POST -H "Authorization: Bearer ${token}" -H 'content-type: application/json' \\`,
    `                -d '${body}' ${url}/v1/webhooks`,
  ]
}

/** What the start says about the database: whether it came from the cache, and where that is. */
function databaseLine(database: DevKernel['database']): string {
  if (database.warm) {
    const { pid, reused } = database.warm
    return `  kernel:   the warm dev kernel (pid ${pid}, ${reused ? 'already running' : 'started now; the next runs reuse it'}), a new tenant for this session; \`trellis-plugin dev-kernel stop\` stops it`
  }
  if (database.kind === 'postgres') return '  database: PostgreSQL'
  if (!database.template) return '  database: embedded, migrated (no cache)'
  return database.templateMade
    ? `  database: embedded, migrated once and cached in ${database.template}; the next start loads it`
    : `  database: embedded, loaded from the cache ${database.template}`
}

/** Runs until `signal` aborts. */
export async function runDev(options: DevOptions): Promise<void> {
  const { dir, log } = options
  const started = performance.now()
  const cacheDir = options.cacheDir
  const kernel = options.warm
    ? await openWarmTenant({
        ...(options.egressAllow ? { egressAllow: options.egressAllow } : {}),
        ...(typeof cacheDir === 'string' ? { cacheDir } : {}),
      })
    : await (await loadDevKernel())({
        port: options.port,
        ...(options.egressAllow ? { egressAllow: options.egressAllow } : {}),
        ...(cacheDir !== undefined ? { cacheDir } : {}),
      })
  let proxy: { url: string; close: () => Promise<void> } | undefined
  let prebuilt = options.built
  const install = async () => {
    const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8')) as Record<string, unknown>
    const built = prebuilt ?? (await buildPlugin({ dir, write: true }))
    prebuilt = undefined
    return kernel.install(
      { manifest, code: built.code, sourceMap: built.sourceMap },
      { settings: options.settings ?? {} },
    )
  }
  try {
    const first = await install()
    const basePath = `/v1/x/${first.mount}`
    if (options.warm) proxy = await startDevProxy(kernel.url!, options.port)
    const url = proxy?.url ?? kernel.url!
    const token = await sessionToken(kernel)
    const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8')) as Record<string, unknown>
    log(`trellis dev: ${url}${basePath}  (${first.version}, tenant ${kernel.tenant.slug})`)
    log(`  sign in: ${kernel.tenant.adminEmail} / ${kernel.tenant.adminPassword}`)
    log(`  try:     curl -H "Authorization: Bearer ${token}" ${url}${basePath}/…`)
    log('           (an API key of the dev admin: it does not expire while this runs)')
    for (const line of webhookHint(manifest, url, token, options.egressAllow ?? [])) log(line)
    log(databaseLine(kernel.database))
    log('  watching src/ and trellis.plugin.json; Ctrl-C stops')
    log(`  ready in ${((performance.now() - started) / 1000).toFixed(1)} s`)
    const stopLogs = kernel.onInvocation((inv) => log(formatInvocation(inv)))
    await mkdir(join(dir, 'dist'), { recursive: true })
    await writeFile(join(dir, DEV_SERVER_FILE), `${JSON.stringify({ url, basePath, token, pid: process.pid })}\n`, {
      mode: 0o600,
    })
    options.onReady?.({ url, basePath, token, kernel })

    let timer: NodeJS.Timeout | undefined
    let running: Promise<void> = Promise.resolve()
    const reload = () => {
      running = running.then(async () => {
        try {
          const r = await install()
          log(`reloaded ${r.version}`)
          options.onReload?.({ ok: true, version: r.version })
        } catch (err) {
          log(`reload failed: ${(err as Error).message}`)
          options.onReload?.({ ok: false, error: (err as Error).message })
        }
      })
    }
    const onChange = (_event: string, file: string | Buffer | null) => {
      if (file && String(file).startsWith('dist')) return
      clearTimeout(timer)
      timer = setTimeout(reload, 150)
    }
    // The manifest is watched through its directory: an editor that saves by writing a new file
    // and renaming it over the old one replaces the inode a watch on the file itself would follow.
    const watchers = [
      watch(join(dir, 'src'), { recursive: true }, onChange),
      watch(dir, (event, file) => {
        if (file && String(file) === 'trellis.plugin.json') onChange(event, file)
      }),
    ]
    await new Promise<void>((resolve) =>
      options.signal.aborted ? resolve() : options.signal.addEventListener('abort', () => resolve(), { once: true }),
    )
    clearTimeout(timer)
    for (const w of watchers) w.close()
    stopLogs()
    await running
    await rm(join(dir, DEV_SERVER_FILE), { force: true })
  } finally {
    await proxy?.close()
    await kernel.close()
  }
}
