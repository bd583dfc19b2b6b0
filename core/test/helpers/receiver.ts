import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Received {
  headers: http.IncomingHttpHeaders
  body: string
  at: number
}

/** A local webhook receiver whose answer the test controls. */
export async function startReceiver(respond: (r: Received, n: number) => number | 'hang' = () => 200) {
  const received: Received[] = []
  const waiters: Array<() => void> = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      const r = { headers: req.headers, body, at: Date.now() }
      received.push(r)
      for (const w of waiters.splice(0)) w()
      const status = respond(r, received.length)
      if (status === 'hang') return
      if (status >= 300 && status < 400) res.setHeader('location', '/elsewhere')
      res.writeHead(status, { 'content-type': 'text/plain' })
      res.end(`answer ${status} ${'x'.repeat(2000)}`)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    received,
    /** Resolves once `pred` holds over what was received (or rejects after `ms`). */
    async until(pred: (all: Received[]) => boolean, ms = 10_000): Promise<Received[]> {
      const deadline = Date.now() + ms
      while (!pred(received)) {
        if (Date.now() > deadline) throw new Error(`receiver: condition not met in ${ms} ms (got ${received.length})`)
        await new Promise<void>((r) => {
          waiters.push(r)
          setTimeout(r, 50)
        })
      }
      return received
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

export async function eventually<T>(fn: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
