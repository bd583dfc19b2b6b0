import { KRN } from '../errors.js'

/** Outgoing mail: where it goes and whom it is from (TRELLIS_SMTP_URL, TRELLIS_MAIL_FROM). */
export interface MailConfig {
  /** `smtp://user:pass@host:587` or `smtps://…:465`; nodemailer's URL options (e.g. `?ignoreTLS=true`) apply. */
  smtpUrl: string
  /** The From header, e.g. `Trellis <no-reply@example.com>`. */
  from: string
  /** Where links in e-mails point (the console); defaults to the public URL. */
  linkUrl?: string
}

function bad(variable: string, reason: string): never {
  throw KRN.CONFIG_INVALID({ variable, reason })
}

/** The mail settings in the environment, or undefined when TRELLIS_SMTP_URL is unset (no mail is sent). */
export function parseMailConfig(env: NodeJS.ProcessEnv): MailConfig | undefined {
  const url = env.TRELLIS_SMTP_URL?.trim()
  if (!url) return undefined
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    bad('TRELLIS_SMTP_URL', 'is not a URL')
  }
  if (parsed.protocol !== 'smtp:' && parsed.protocol !== 'smtps:')
    bad('TRELLIS_SMTP_URL', 'must start with smtp:// or smtps://')
  const from = env.TRELLIS_MAIL_FROM?.trim()
  if (!from)
    bad('TRELLIS_MAIL_FROM', 'is required when TRELLIS_SMTP_URL is set (e.g. "Trellis <no-reply@example.com>")')
  if (!/@/.test(from)) bad('TRELLIS_MAIL_FROM', 'must contain an e-mail address')
  const linkUrl = env.TRELLIS_MAIL_LINK_URL?.trim()
  if (linkUrl) {
    let link: URL
    try {
      link = new URL(linkUrl)
    } catch {
      bad('TRELLIS_MAIL_LINK_URL', 'is not a URL')
    }
    if (link.protocol !== 'http:' && link.protocol !== 'https:')
      bad('TRELLIS_MAIL_LINK_URL', 'must start with http:// or https://')
  }
  return { smtpUrl: url, from, ...(linkUrl ? { linkUrl: linkUrl.replace(/\/+$/, '') } : {}) }
}
