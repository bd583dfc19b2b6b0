import http from 'node:http'
import https from 'node:https'
import { Readable } from 'node:stream'
import { EgressGuard } from '../../egress/index.js'

/**
 * A `fetch` for `InferenceClient` that goes through the kernel's egress guard to one host only:
 * the model's registered endpoint. Any other URL is refused before a connection is made; the
 * address is resolved and pinned by the guard (SSRF and DNS rebinding); redirects are not
 * followed. The body streams (server-sent events for streamed chat).
 */
export function guardedFetch(guard: EgressGuard, endpointUrl: string): typeof fetch {
  const allowed = new URL(endpointUrl)
  return (async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url)
    if (url.host !== allowed.host || url.protocol !== allowed.protocol)
      throw Object.assign(new Error(`egress to ${url.host} refused: the model's endpoint is ${allowed.host}`), {
        code: 'EGRESS_HOST',
      })
    const target = await guard.resolve(url)
    const lib = url.protocol === 'https:' ? https : http
    const headers: Record<string, string> = {}
    new Headers(init.headers).forEach((v, k) => {
      headers[k] = v
    })
    const body = typeof init.body === 'string' ? init.body : init.body == null ? undefined : String(init.body)
    return await new Promise<Response>((resolve, reject) => {
      const req = lib.request(
        url,
        {
          method: init.method ?? 'GET',
          headers,
          lookup: EgressGuard.pinnedLookup(target),
          agent: guard.agentFor(target),
          ...(url.hostname === target.address || url.hostname.startsWith('[') ? {} : { servername: target.host }),
        },
        (res) => {
          const h = new Headers()
          for (const [k, v] of Object.entries(res.headers))
            if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v)
          const status = res.statusCode ?? 502
          const stream = status === 204 || status === 304 ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>)
          resolve(new Response(stream, { status, headers: h }))
        },
      )
      const signal = init.signal
      if (signal) {
        if (signal.aborted) req.destroy(signal.reason as Error)
        else signal.addEventListener('abort', () => req.destroy(signal.reason as Error), { once: true })
      }
      req.on('error', reject)
      req.end(body)
    })
  }) as typeof fetch
}
