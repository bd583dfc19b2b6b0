import http from 'node:http'
import https from 'node:https'
import { EgressGuard } from './egress-guard.js'

export interface EgressResponse {
  status: number
  /** The first `maxResponseBytes` of the body. */
  body: string
  /** Response headers, lower-case names (repeated ones joined with `, `). */
  headers: Record<string, string>
  durationMs: number
}

export interface EgressRequest {
  url: string
  method?: string
  headers?: Record<string, string>
  body?: string
  connectTimeoutMs?: number
  totalTimeoutMs?: number
  maxResponseBytes?: number
}

/**
 * One HTTP request through the egress guard: the address is checked and pinned, redirects are
 * returned as they are (never followed), and connect and total time are bounded.
 */
export async function egressRequest(guard: EgressGuard, req: EgressRequest): Promise<EgressResponse> {
  const started = performance.now()
  const target = await guard.resolve(req.url)
  const lib = target.url.protocol === 'https:' ? https : http
  const maxBytes = req.maxResponseBytes ?? 1024
  return new Promise<EgressResponse>((resolve, reject) => {
    let settled = false
    const finish = (err: Error | null, res?: EgressResponse) => {
      if (settled) return
      settled = true
      clearTimeout(total)
      clearTimeout(connect)
      if (err) reject(err)
      else resolve(res!)
    }
    const r = lib.request(
      target.url,
      {
        method: req.method ?? 'POST',
        headers: req.headers,
        lookup: EgressGuard.pinnedLookup(target),
        agent: guard.agentFor(target),
        ...(target.url.hostname === target.address || target.url.hostname.startsWith('[')
          ? {}
          : { servername: target.host }),
      },
      (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (c: Buffer) => {
          if (size < maxBytes) chunks.push(c)
          size += c.length
        })
        res.on('end', () =>
          finish(null, {
            status: res.statusCode ?? 0,
            headers: flatHeaders(res.headers),
            body: Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8'),
            durationMs: Math.round(performance.now() - started),
          }),
        )
        res.on('error', (e) => finish(e))
      },
    )
    const total = setTimeout(() => {
      r.destroy(Object.assign(new Error(`timed out after ${req.totalTimeoutMs ?? 15000} ms`), { code: 'ETIMEDOUT' }))
    }, req.totalTimeoutMs ?? 15000)
    const connect = setTimeout(() => {
      r.destroy(
        Object.assign(new Error(`no connection within ${req.connectTimeoutMs ?? 5000} ms`), {
          code: 'ECONNECTTIMEOUT',
        }),
      )
    }, req.connectTimeoutMs ?? 5000)
    r.on('socket', (s) => {
      if (!s.connecting) clearTimeout(connect)
      else s.once('connect', () => clearTimeout(connect))
    })
    r.on('error', (e) => finish(e))
    r.end(req.body)
  })
}

function flatHeaders(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v
  return out
}
