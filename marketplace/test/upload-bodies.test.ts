// Upload bodies over a real socket: a refused upload is refused before its body is read, and
// the connection is closed rather than drained — a 512 MiB Content-Length, an unauthenticated
// upload, a chunked body that never ends (in the file part, and in a field).
import t from 'tap'
import { connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { DB_KINDS } from '../../core/test/helpers/test-kernel.js'
import { startMarketKernel } from './fixtures/kernel.js'
import { createPartner } from './fixtures/publishing-suite.js'

const MiB = 1024 * 1024

interface Exchange {
  /** The status line's code, once the response arrived. */
  status: Promise<number>
  /** Resolves when the server closed the connection. */
  closed: Promise<void>
  /** Bytes of body the client managed to write before the server closed. */
  written(): number
  socket: Socket
}

/** Opens a connection, sends `head`, then feeds `body` chunks (null ends a chunked body) until the server answers and closes. */
function exchange(port: number, head: string, next: () => Buffer | null): Exchange {
  const socket = connect(port, '127.0.0.1')
  let written = 0
  let received = ''
  let stop = false
  let resolveStatus!: (n: number) => void
  const status = new Promise<number>((r) => (resolveStatus = r))
  const closed = new Promise<void>((r) => socket.once('close', () => r()))
  socket.on('error', () => {
    stop = true
  })
  socket.on('data', (d) => {
    received += d.toString('latin1')
    const m = /^HTTP\/1\.1 (\d{3})/.exec(received)
    if (m) resolveStatus(Number(m[1]))
  })
  socket.once('close', () => {
    stop = true
  })
  const pump = () => {
    while (!stop) {
      const chunk = next()
      if (chunk === null) return
      written += chunk.length
      if (!socket.write(chunk)) return void socket.once('drain', pump)
    }
  }
  socket.once('connect', () => {
    socket.write(head)
    pump()
  })
  return { status, closed, written: () => written, socket }
}

/** Resolves with `p`, or rejects after `ms` (generous: the machine is shared). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms).unref()),
  ])
}

for (const kind of DB_KINDS)
  t.test(`upload bodies over a socket (${kind})`, async (t) => {
    const k = await startMarketKernel(t, kind)
    await k.kernel.app.listen({ port: 0, host: '127.0.0.1' })
    const port = (k.kernel.app.server.address() as AddressInfo).port
    const acme = await createPartner(k, 'acme-bodies')
    t.equal(
      (await k.req('POST', '/v1/marketplace/scopes', { token: acme.token, body: { scope: '@acme' } })).status,
      201,
    )
    const boundary = 'trellis-socket-test'
    const url = '/v1/marketplace/plugins/@acme/big/versions'
    const partHead = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="package"; filename="p.tgz"\r\nContent-Type: application/gzip\r\n\r\n`,
    )
    const filler = Buffer.alloc(64 * 1024, 0x41)

    await t.test('a 512 MiB Content-Length is refused at once (413), and the connection closed', async (t) => {
      let sent = false
      const x = exchange(
        port,
        `POST ${url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${acme.token}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${512 * MiB}\r\n\r\n`,
        () => {
          if (sent) return null
          sent = true
          return partHead
        },
      )
      t.equal(await within(x.status, 30_000, 'the 413'), 413)
      await within(x.closed, 30_000, 'the close')
      t.ok(x.written() < MiB, `answered after ${x.written()} bytes of body, not 512 MiB`)
    })

    await t.test(
      'an unauthenticated upload gets its 401 without the body being read, and the connection closed',
      async (t) => {
        let sent = 0
        const x = exchange(
          port,
          `POST ${url} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${512 * MiB}\r\n\r\n`,
          () => {
            // Keep sending until the server hangs up: a server that drains would read it all.
            if (sent++ === 0) return partHead
            return filler
          },
        )
        t.equal(await within(x.status, 30_000, 'the 401'), 401)
        await within(x.closed, 60_000, 'the close')
        t.ok(
          x.written() < 256 * MiB,
          `the connection closed after ${Math.round(x.written() / MiB)} MiB, not drained to the end`,
        )
      },
    )

    for (const where of ['file', 'field'] as const) {
      await t.test(
        `an endless chunked body (in a ${where} part) is cut off at the limit: 413, connection closed`,
        async (t) => {
          let first = true
          const head =
            where === 'file'
              ? partHead
              : Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="changelog"\r\n\r\n`)
          const chunk = (b: Buffer) =>
            Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')])
          const x = exchange(
            port,
            `POST ${url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${acme.token}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nTransfer-Encoding: chunked\r\n\r\n`,
            () => {
              if (first) {
                first = false
                return chunk(head)
              }
              return chunk(filler)
            },
          )
          const status = await within(x.status, 60_000, 'the answer')
          t.ok(status === 413 || status === 400, `refused with ${status}`)
          await within(x.closed, 60_000, 'the close')
          t.ok(x.written() < 64 * MiB, `cut off after ${Math.round(x.written() / MiB)} MiB`)
        },
      )
    }
    const refused = await k.ownerSql<{ code: string }>(
      `select data->>'code' as code from audit_log where tenant_id = ? and action = 'marketplace.version.refused'`,
      [acme.id],
    )
    t.ok(
      refused.filter((r) => r.code === 'MKT_ERR_PACKAGE_TOO_LARGE').length >= 2,
      'the oversized uploads were audited as refusals',
    )
  })
