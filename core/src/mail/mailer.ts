import type { Transporter } from 'nodemailer'
import type { Logger } from 'pino'
import type { MailConfig } from './config.js'

export interface MailMessage {
  to: string
  subject: string
  text: string
}

/**
 * Sends the kernel's e-mail (password resets, invitations) over SMTP with nodemailer. Sending
 * happens after the request has answered, so how long the mail server takes never tells a
 * caller anything (whether an address has an account); failures are logged, never retried by
 * the caller. {@link idle} resolves once everything handed over so far has been sent or failed.
 */
export class Mailer {
  /** Loaded with nodemailer when mail is configured: a kernel without mail never loads it. */
  private readonly transport: Promise<Transporter> | undefined
  private pending = new Set<Promise<void>>()

  constructor(
    private readonly config: MailConfig | undefined,
    private readonly logger: Pick<Logger, 'warn' | 'info'>,
    /** Where links in e-mails point when the mail configuration names no link URL. */
    private readonly publicUrl: string,
  ) {
    this.transport = config
      ? import('nodemailer').then(({ default: nodemailer }) => nodemailer.createTransport(config.smtpUrl))
      : undefined
    // A transport that could not be made fails each send (logged there), and nothing else.
    this.transport?.catch(() => undefined)
  }

  /** Whether a mail transport is configured (TRELLIS_SMTP_URL). */
  get configured(): boolean {
    return this.transport !== undefined
  }

  /** A link into the console (or whatever serves TRELLIS_MAIL_LINK_URL) with a query. */
  link(path: string, query: Record<string, string>): string {
    const base = this.config?.linkUrl ?? this.publicUrl.replace(/\/+$/, '')
    return `${base}${path}?${new URLSearchParams(query).toString()}`
  }

  /** Hands a message over for sending in the background; `kind` names it in the log (never the address). */
  send(kind: string, message: MailMessage): void {
    const { transport, config } = this
    if (!transport || !config) return
    const sent: Promise<void> = transport
      .then((t) => t.sendMail({ from: config.from, to: message.to, subject: message.subject, text: message.text }))
      .then(
        () => this.logger.info({ mail: kind }, 'mail sent'),
        (err: Error) => this.logger.warn({ mail: kind, err: err.message }, 'mail could not be sent'),
      )
      .finally(() => this.pending.delete(sent))
    this.pending.add(sent)
  }

  /** Resolves when every message handed over so far has been sent (or has failed). */
  async idle(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending])
  }

  async close(): Promise<void> {
    await this.idle()
    ;(await this.transport?.catch(() => undefined))?.close()
  }
}
