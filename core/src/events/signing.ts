import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/** A new Standard Webhooks secret: `whsec_` + base64 of 24 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`
}

function keyOf(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64')
}

/** `v1,<base64 HMAC-SHA256(id.timestamp.body)>` for each secret, space-separated (rotation signs with both). */
export function signWebhook(secrets: readonly string[], msgId: string, timestampSeconds: number, body: string): string {
  return secrets
    .map((s) => `v1,${createHmac('sha256', keyOf(s)).update(`${msgId}.${timestampSeconds}.${body}`).digest('base64')}`)
    .join(' ')
}

/** Checks a signature header against one secret (the kernel's own tests use `standardwebhooks` instead). */
export function verifyWebhook(
  secret: string,
  msgId: string,
  timestampSeconds: number,
  body: string,
  header: string,
): boolean {
  const expected = Buffer.from(signWebhook([secret], msgId, timestampSeconds, body))
  return header.split(' ').some((sig) => {
    const b = Buffer.from(sig)
    return b.length === expected.length && timingSafeEqual(b, expected)
  })
}
