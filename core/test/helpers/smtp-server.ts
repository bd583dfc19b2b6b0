import { SMTPServer } from 'smtp-server'
import type { AddressInfo } from 'node:net'

export interface ReceivedMail {
  from: string
  to: string[]
  /** The whole message as sent (headers and body). */
  raw: string
}

export interface TestSmtpServer {
  /** `smtp://127.0.0.1:<port>?ignoreTLS=true`, for TRELLIS_SMTP_URL. */
  url: string
  /** Every message accepted so far, oldest first. */
  messages: ReceivedMail[]
  /** The messages to one address (case-insensitive). */
  to(address: string): ReceivedMail[]
  close(): Promise<void>
}

/**
 * A real SMTP server on loopback (the `smtp-server` package): plain SMTP, no authentication, and
 * every message kept in memory. A message is in `messages` before the server answers its DATA,
 * so once the kernel's mailer is idle every mail it sent is here.
 */
export async function startSmtpServer(): Promise<TestSmtpServer> {
  const messages: ReceivedMail[] = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        })
        callback()
      })
    },
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.server.address() as AddressInfo).port
  return {
    url: `smtp://127.0.0.1:${port}?ignoreTLS=true`,
    messages,
    to: (address) => messages.filter((m) => m.to.some((a) => a.toLowerCase() === address.toLowerCase())),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** A mail's text with quoted-printable undone (soft line breaks, =XX escapes). */
export function textOf(mail: ReceivedMail): string {
  return mail.raw
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)))
}

/** The first `trX_…` token in a mail's body (a reset or invitation link), URL-decoded. */
export function tokenIn(mail: ReceivedMail, prefix: 'trp' | 'tri'): string {
  const m = new RegExp(`token=(${prefix}_[A-Za-z0-9_%-]+)`).exec(textOf(mail))
  if (!m) throw new Error(`no ${prefix} token in the mail:\n${mail.raw}`)
  return decodeURIComponent(m[1]!)
}
