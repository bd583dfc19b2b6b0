/**
 * The warm dev kernel, client side: finds the kernel process kept running between runs (or
 * starts it, once), opens a tenant of its own for this run, and gives it as a {@link DevKernel}
 * — the kernel's HTTP API for requests, the control endpoint for the shortcuts. See
 * docs/adr/0092-warm-dev-kernel.md.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs'
import { open, readdir, readFile, rm } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { DaemonOptions, WarmKernelState } from './dev-daemon.js'
import { platformEntry, type DevKernel, type DevResponse } from './dev-kernel.js'
import { SDK } from './sdk-errors.js'

/** Options of {@link openWarmTenant}. */
export interface WarmKernelOptions {
  /** Hosts the plugin's `ctx.http.fetch` may reach although private; a kernel runs per list. */
  egressAllow?: string[]
  /** Where the kernel's migrated database is cached (see `DevKernelOptions.cacheDir`). */
  cacheDir?: string
  /**
   * Where the state file (address, control token, pid) and the log of the warm kernel are kept:
   * `$TRELLIS_DEV_KERNEL_DIR`, else `dev-kernel/` in the Trellis cache directory.
   */
  stateDir?: string
  /** How long the kernel stays up without a request (default `$TRELLIS_DEV_KERNEL_IDLE_MINUTES`, else 30 minutes). */
  idleMs?: number
  /** How long a start may take before it is given up (default 5 minutes: the first start migrates a database). */
  startTimeoutMs?: number
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** `$TRELLIS_DEV_KERNEL_DIR`, else `dev-kernel` under `$TRELLIS_CACHE_DIR`, `$XDG_CACHE_HOME/trellis` or `~/.cache/trellis`. */
export function warmStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TRELLIS_DEV_KERNEL_DIR) return env.TRELLIS_DEV_KERNEL_DIR
  const cache = env.TRELLIS_CACHE_DIR || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'trellis')
  return join(cache, 'dev-kernel')
}

/** Whether `trellis-plugin test`/`dev` and the harness should use the warm kernel (`TRELLIS_DEV_KERNEL=warm`). */
export function warmWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.TRELLIS_DEV_KERNEL === 'warm'
}

/**
 * What a warm kernel is for: the platform it runs (where it is installed, its version) and the
 * egress allow-list. A run whose key differs gets a kernel of its own.
 */
function keyOf(egressAllow: string[]): string {
  const platform = platformEntry()
  let version = ''
  try {
    const pkg = join(platform, '..', '..', 'package.json')
    version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version?: string }).version ?? ''
  } catch {}
  return createHash('sha256')
    .update(JSON.stringify([platform, version, [...egressAllow].sort()]))
    .digest('hex')
    .slice(0, 16)
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function readState(file: string): Promise<WarmKernelState | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as WarmKernelState
  } catch {
    return undefined
  }
}

async function control<T>(state: WarmKernelState, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${state.control}${path}`, {
    method,
    headers: { authorization: `Bearer ${state.token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const answer = (await res.json()) as { ok: boolean; error?: { message: string; code?: string } } & T
  if (!answer.ok)
    throw Object.assign(new Error(answer.error?.message ?? `warm dev kernel: ${res.status}`), answer.error ?? {})
  return answer
}

/** The running kernel of this state file, if it answers. */
async function healthy(file: string, key: string): Promise<WarmKernelState | undefined> {
  const state = await readState(file)
  if (!state || state.key !== key || !alive(state.pid)) return undefined
  try {
    await control(state, 'GET', '/health')
    return state
  } catch {
    return undefined
  }
}

/** Runs `fn` holding the start lock of `file` (one start at a time; a dead holder's lock is taken over). */
async function withLock<T>(lock: string, deadline: number, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      const fh = await open(lock, 'wx')
      await fh.writeFile(String(process.pid))
      await fh.close()
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const holder = Number(await readFile(lock, 'utf8').catch(() => '0'))
      if (holder && !alive(holder)) await rm(lock, { force: true })
      else if (Date.now() > deadline) throw new Error(`${lock} is held by process ${holder}`)
      else await sleep(200)
    }
  }
  try {
    return await fn()
  } finally {
    await rm(lock, { force: true })
  }
}

/** The warm kernel for these options: the running one, or one started now (`reused` tells which). */
export async function warmKernel(
  options: WarmKernelOptions = {},
): Promise<{ state: WarmKernelState; reused: boolean }> {
  const egressAllow = options.egressAllow ?? []
  const key = keyOf(egressAllow)
  const dir = options.stateDir ?? warmStateDir()
  const file = join(dir, `${key}.json`)
  const running = await healthy(file, key)
  if (running) return { state: running, reused: true }
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const deadline = Date.now() + (options.startTimeoutMs ?? 300_000)
  return withLock(`${file}.lock`, deadline, async () => {
    // Another run may have started it while this one waited for the lock.
    const started = await healthy(file, key)
    if (started) return { state: started, reused: true }
    await rm(file, { force: true })
    const log = join(dir, `${key}.log`)
    const idleMinutes = Number(process.env.TRELLIS_DEV_KERNEL_IDLE_MINUTES)
    const daemon: DaemonOptions = {
      key,
      egressAllow,
      ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
      idleMs: options.idleMs ?? (idleMinutes > 0 ? idleMinutes * 60_000 : 30 * 60_000),
    }
    const source = import.meta.url.endsWith('.ts')
    const entry = fileURLToPath(new URL(`./dev-daemon.${source ? 'ts' : 'js'}`, import.meta.url))
    // Not the test runner's context or loader hooks of whoever started it: the kernel outlives them.
    const { NODE_TEST_CONTEXT: _c, NODE_OPTIONS: _o, ...env } = process.env
    const out = openSync(log, 'w', 0o600)
    const child = spawn(
      process.execPath,
      [
        '--no-node-snapshot',
        ...(source ? ['--import', import.meta.resolve('tsx')] : []),
        entry,
        file,
        JSON.stringify(daemon),
      ],
      { detached: true, stdio: ['ignore', out, out], cwd: dir, env },
    )
    closeSync(out)
    child.unref()
    let exited: number | null | undefined
    child.once('exit', (code) => (exited = code))
    for (;;) {
      const state = await healthy(file, key)
      if (state && state.pid === child.pid) return { state, reused: false }
      if (exited !== undefined || Date.now() > deadline) {
        if (exited === undefined) child.kill('SIGTERM')
        const tail = (await readFile(log, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n')
        throw SDK.DEV_KERNEL_UNAVAILABLE({
          reason: exited === undefined ? 'it did not start in time' : `it exited (${exited})`,
          log,
          tail,
        })
      }
      await sleep(100)
    }
  })
}

/** Parses an HTTP answer the way the in-process dev kernel does. */
async function devResponse(res: Response): Promise<DevResponse> {
  const text = await res.text()
  const headers: Record<string, string> = {}
  res.headers.forEach((v, k) => {
    headers[k] = v
  })
  const type = headers['content-type'] ?? ''
  return { status: res.status, headers, body: text === '' ? null : type.includes('json') ? JSON.parse(text) : text }
}

/**
 * A tenant of its own in the warm kernel (started if none runs), as a {@link DevKernel}: requests
 * go through the kernel's HTTP API, the shortcuts through its control endpoint. `close()` lets go
 * of the tenant; the kernel keeps running for the next run.
 */
export async function openWarmTenant(options: WarmKernelOptions = {}): Promise<DevKernel> {
  const { state, reused } = await warmKernel(options)
  return tenantOf(state, reused)
}

async function tenantOf(state: WarmKernelState, reused: boolean, slug?: string): Promise<DevKernel> {
  const opened = await control<{ tenant: DevKernel['tenant']; database: DevKernel['database'] }>(
    state,
    'POST',
    '/tenants',
    slug ? { slug } : {},
  )
  const { tenant } = opened
  const rpc = async <T>(method: string, ...args: unknown[]) =>
    (await control<{ result: T }>(state, 'POST', `/tenants/${tenant.id}/${method}`, { args })).result
  const streams = new Set<AbortController>()
  return {
    url: state.url,
    database: { ...opened.database, warm: { pid: state.pid, startedAt: state.startedAt, reused } },
    tenant,
    install: (bundle, opts) => rpc('install', bundle, opts ?? {}),
    async request(method, path, init = {}) {
      const headers: Record<string, string> = { authorization: `Bearer ${init.token ?? tenant.token}` }
      if (init.body !== undefined) headers['content-type'] = 'application/json'
      const res = await fetch(`${state.url}${path}`, {
        method,
        headers: { ...headers, ...(init.headers ?? {}) },
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      })
      return devResponse(res)
    },
    invoke: (plugin, kind, name, input) => rpc('invoke', plugin, kind, name, input),
    emit: (plugin, type, data, subject) => rpc('emit', plugin, type, data, subject),
    records: (plugin, collection) => rpc('records', plugin, collection),
    events: (plugin) => rpc('events', plugin),
    invocations: (plugin) => rpc('invocations', plugin),
    onInvocation(listener) {
      const ac = new AbortController()
      streams.add(ac)
      void (async () => {
        const res = await fetch(`${state.control}/tenants/${tenant.id}/invocations-stream`, {
          headers: { authorization: `Bearer ${state.token}` },
          signal: ac.signal,
        })
        let buffered = ''
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buffered += Buffer.from(chunk).toString('utf8')
          let end = buffered.indexOf('\n\n')
          for (; end >= 0; end = buffered.indexOf('\n\n')) {
            const event = buffered.slice(0, end)
            buffered = buffered.slice(end + 2)
            if (event.startsWith('data: ')) listener(JSON.parse(event.slice(6)))
          }
        }
      })().catch(() => {})
      return () => {
        streams.delete(ac)
        ac.abort()
      }
    },
    openTenant: (o) => tenantOf(state, true, o?.slug),
    async close() {
      for (const ac of streams) ac.abort()
      streams.clear()
      await control(state, 'POST', `/tenants/${tenant.id}/close`).catch(() => {})
    },
  }
}

/** Stops every warm kernel whose state is in `stateDir`; resolves to the pids stopped. */
export async function stopWarmKernels(stateDir: string = warmStateDir()): Promise<number[]> {
  const stopped: number[] = []
  for (const name of await readdir(stateDir).catch(() => [] as string[])) {
    if (!name.endsWith('.json')) continue
    const file = join(stateDir, name)
    const state = await readState(file)
    if (!state) continue
    if (alive(state.pid)) {
      await control(state, 'POST', '/stop').catch(() => process.kill(state.pid, 'SIGTERM'))
      for (let i = 0; i < 100 && alive(state.pid); i++) await sleep(100)
      stopped.push(state.pid)
    }
    await rm(file, { force: true })
  }
  return stopped
}

/** The warm kernels whose state is in `stateDir` and that answer. */
export async function listWarmKernels(stateDir: string = warmStateDir()): Promise<WarmKernelState[]> {
  const out: WarmKernelState[] = []
  for (const name of await readdir(stateDir).catch(() => [] as string[])) {
    if (!name.endsWith('.json')) continue
    const state = await healthy(join(stateDir, name), name.slice(0, -'.json'.length))
    if (state) out.push(state)
  }
  return out
}
