/**
 * The warm dev kernel's process: one kernel (from `@trellis/platform`, as `startDevKernel` makes
 * it) kept running between `trellis-plugin test` and `dev` runs, so that a run costs a new tenant
 * and an install instead of a kernel start. It listens on 127.0.0.1 twice: the kernel's own HTTP
 * API, and a control endpoint (bearer token in the state file, readable by its owner only) through
 * which a run opens its tenant and uses the {@link DevKernel} shortcuts. It stops when told to, on
 * SIGTERM, or after `idleMs` without a request while no run is streaming invocations.
 *
 * Started by dev-warm.ts: `node dev-daemon.(ts|js) <state file> <options as JSON>`.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { rename, rm, writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { loadDevKernel, type DevKernel } from './dev-kernel.js'

/** What the state file holds: where the warm kernel is and how to talk to it. */
export interface WarmKernelState {
  pid: number
  /** The kernel's HTTP API. */
  url: string
  /** The control endpoint. */
  control: string
  token: string
  /** What the kernel was started for (platform install, egress allow-list). */
  key: string
  startedAt: string
}

/** Options the client passes to the process. */
export interface DaemonOptions {
  key: string
  egressAllow: string[]
  cacheDir?: string
  idleMs: number
}

/** The tenant shortcuts the control endpoint runs, by name. */
const METHODS = ['install', 'invoke', 'emit', 'records', 'events', 'invocations'] as const
type Method = (typeof METHODS)[number]

const MAX_BODY = 64 * 1024 * 1024

/** An error as the control endpoint answers it (the client raises it again with the same code). */
export function errorView(err: unknown): { message: string; code?: string; status?: number; details?: unknown } {
  const e = err as { message?: string; code?: string; status?: number; details?: unknown }
  return {
    message: e?.message ?? String(err),
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
    ...(typeof e?.status === 'number' ? { status: e.status } : {}),
    ...(e?.details !== undefined ? { details: e.details } : {}),
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length
    if (size > MAX_BODY) throw new Error('request body too large')
    chunks.push(c)
  }
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {}
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

/** Starts the kernel and the control endpoint, then writes the state file; runs until stopped. */
export async function serveWarmKernel(stateFile: string, options: DaemonOptions): Promise<void> {
  const startDevKernel = await loadDevKernel()
  const kernel = await startDevKernel({
    port: 0,
    tenantSlug: 'warm',
    egressAllow: options.egressAllow,
    ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
  })
  const tenants = new Map<string, DevKernel>()
  const token = Buffer.from(randomBytes(24).toString('base64url'))
  let streams = 0
  let idle: NodeJS.Timeout | undefined
  let stopping: Promise<void> | undefined
  const touch = () => {
    clearTimeout(idle)
    idle = setTimeout(() => (streams > 0 ? touch() : void stop()), options.idleMs)
  }
  const authorized = (req: IncomingMessage) => {
    const given = Buffer.from(String(req.headers.authorization ?? '').replace(/^Bearer /, ''))
    return given.length === token.length && timingSafeEqual(given, token)
  }
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (!authorized(req)) return send(res, 401, { ok: false, error: { message: 'unauthorized' } })
    const path = new URL(req.url ?? '/', 'http://x').pathname.split('/').filter(Boolean)
    if (req.method === 'GET' && path[0] === 'health')
      return send(res, 200, { ok: true, pid: process.pid, key: options.key, tenants: tenants.size })
    if (req.method === 'POST' && path[0] === 'stop') {
      send(res, 200, { ok: true })
      return void stop()
    }
    if (req.method === 'POST' && path[0] === 'tenants' && path.length === 1) {
      const body = (await readJson(req)) as { slug?: string }
      const view = await kernel.openTenant(body.slug ? { slug: body.slug } : {})
      tenants.set(view.tenant.id, view)
      return send(res, 201, { ok: true, tenant: view.tenant, database: view.database })
    }
    const view = path[0] === 'tenants' ? tenants.get(path[1] ?? '') : undefined
    if (!view) return send(res, 404, { ok: false, error: { message: `no open tenant ${path[1] ?? ''}` } })
    if (req.method === 'GET' && path[2] === 'invocations-stream') {
      streams++
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
      res.write(': open\n\n')
      const off = view.onInvocation((inv) => res.write(`data: ${JSON.stringify(inv)}\n\n`))
      req.on('close', () => {
        off()
        streams--
        touch()
      })
      return
    }
    if (req.method === 'POST' && path[2] === 'close') {
      tenants.delete(view.tenant.id)
      await view.close()
      return send(res, 200, { ok: true })
    }
    const method = path[2] as Method
    if (req.method !== 'POST' || !METHODS.includes(method))
      return send(res, 404, { ok: false, error: { message: `no ${req.method} ${req.url}` } })
    const { args } = (await readJson(req)) as { args: unknown[] }
    const result = await (view[method] as unknown as (...a: unknown[]) => Promise<unknown>)(...(args ?? []))
    return send(res, 200, { ok: true, result: result ?? null })
  }
  const server = createServer((req, res) => {
    touch()
    handle(req, res).catch((err) => {
      if (!res.headersSent) send(res, 500, { ok: false, error: errorView(err) })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const control = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const state: WarmKernelState = {
    pid: process.pid,
    url: kernel.url!,
    control,
    token: token.toString(),
    key: options.key,
    startedAt: new Date().toISOString(),
  }
  const stop = () => {
    stopping ??= (async () => {
      clearTimeout(idle)
      server.closeAllConnections()
      server.close()
      await rm(stateFile, { force: true })
      await kernel.close()
      process.exit(0)
    })()
    return stopping
  }
  process.once('SIGTERM', () => void stop())
  process.once('SIGINT', () => void stop())
  const tmp = `${stateFile}.${process.pid}.tmp`
  await writeFile(tmp, `${JSON.stringify(state)}\n`, { mode: 0o600 })
  await rename(tmp, stateFile)
  console.log(`warm dev kernel ${process.pid} at ${state.url} (control ${control})`)
  touch()
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [stateFile, raw] = process.argv.slice(2)
  await serveWarmKernel(stateFile!, JSON.parse(raw!) as DaemonOptions)
}
