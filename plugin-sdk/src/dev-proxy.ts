// `trellis-plugin dev` on the warm kernel: the port the developer asked for (4000 by default)
// forwards to the warm kernel's own, so the printed address stays the same whichever kernel serves.
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** Listens on `host:port` and forwards every request, as is, to `target`; resolves to its URL. */
export async function startDevProxy(
  target: string,
  port: number,
  host = '127.0.0.1',
): Promise<{ url: string; close: () => Promise<void> }> {
  const to = new URL(target)
  const server: Server = createServer((req, res) => {
    const upstream = request(
      {
        host: to.hostname,
        port: to.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: to.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    upstream.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' })
      res.end(`the warm dev kernel at ${target} did not answer: ${err.message}\n`)
    })
    req.pipe(upstream)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  const url = `http://${host}:${(server.address() as AddressInfo).port}`
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
