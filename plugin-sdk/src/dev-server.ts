/**
 * `trellis-plugin dev`: a kernel on a throw-away embedded database with the plugin installed
 * for a dev tenant, listening; the plugin is rebuilt and reinstalled whenever its sources or
 * manifest change, and every invocation's log lines are streamed.
 */
import { watch } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildPlugin } from './build.js'
import type { JsonValue } from './context.js'
import { loadDevKernel, type DevInvocation, type DevKernel } from './dev-kernel.js'

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
  /** Called once the plugin is installed and the kernel listens. */
  onReady?: (info: { url: string; basePath: string; token: string; kernel: DevKernel }) => void
  /** Called after each reload (ok or failed). */
  onReload?: (result: { ok: boolean; version?: string; error?: string }) => void
}

function formatInvocation(inv: DevInvocation): string {
  const head = `${inv.outcome === 'ok' ? 'ok ' : 'ERR'} ${inv.entryKind} ${inv.entryName} ${inv.wallMs.toFixed(1)} ms, ${inv.hostCalls} host call(s)${inv.errorCode ? ` ${inv.errorCode}` : ''}`
  const lines = inv.logs.map(
    (l) => `    ${l.level.padEnd(5)} ${l.message}${l.fields ? ` ${JSON.stringify(l.fields)}` : ''}`,
  )
  return [head, ...lines].join('\n')
}

/** Runs until `signal` aborts. */
export async function runDev(options: DevOptions): Promise<void> {
  const { dir, log } = options
  const startDevKernel = await loadDevKernel()
  const kernel = await startDevKernel({
    port: options.port,
    ...(options.egressAllow ? { egressAllow: options.egressAllow } : {}),
  })
  const install = async () => {
    const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8')) as Record<string, unknown>
    const built = await buildPlugin({ dir, write: true })
    return kernel.install(
      { manifest, code: built.code, sourceMap: built.sourceMap },
      { settings: options.settings ?? {} },
    )
  }
  try {
    const first = await install()
    const basePath = `/v1/x/${first.mount}`
    const url = kernel.url!
    log(`trellis dev: ${url}${basePath}  (${first.version}, tenant ${kernel.tenant.slug})`)
    log(`  sign in: ${kernel.tenant.adminEmail} / ${kernel.tenant.adminPassword}`)
    log(`  try:     curl -H "Authorization: Bearer ${kernel.tenant.token}" ${url}${basePath}/…`)
    log('  watching src/ and trellis.plugin.json; Ctrl-C stops')
    const stopLogs = kernel.onInvocation((inv) => log(formatInvocation(inv)))
    options.onReady?.({ url, basePath, token: kernel.tenant.token, kernel })

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
    const watchers = [
      watch(join(dir, 'src'), { recursive: true }, onChange),
      watch(join(dir, 'trellis.plugin.json'), onChange),
    ]
    await new Promise<void>((resolve) =>
      options.signal.aborted ? resolve() : options.signal.addEventListener('abort', () => resolve(), { once: true }),
    )
    clearTimeout(timer)
    for (const w of watchers) w.close()
    stopLogs()
    await running
  } finally {
    await kernel.close()
  }
}
