import { createHash } from 'node:crypto'
import * as client from 'openid-client'
import type { EgressGuard } from '../../egress/egress-guard.js'
import { AUTH } from '../../errors.js'

/** Whether an issuer may be reached over plain HTTP: only on this machine (a test or a local provider). */
const loopback = (url: URL) => ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)

/**
 * The provider's OpenID configuration (discovery), cached for ten minutes per issuer and client.
 * The issuer must be https (plain http only on loopback) and pass the egress guard, like webhooks.
 */
export class OidcClients {
  private cache = new Map<string, { at: number; config: Promise<client.Configuration> }>()

  constructor(private readonly egress: Pick<EgressGuard, 'resolve'>) {}

  async get(issuer: string, clientId: string, clientSecret: string): Promise<client.Configuration> {
    const key = createHash('sha256').update(`${issuer}\n${clientId}\n${clientSecret}`).digest('hex')
    const hit = this.cache.get(key)
    if (hit && Date.now() - hit.at < 600_000) return hit.config
    const url = new URL(issuer)
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback(url)))
      throw AUTH.SSO_FAILED({ reason: 'the issuer must be an https URL' })
    const config = this.egress.resolve(url).then(() =>
      client.discovery(url, clientId, clientSecret, undefined, {
        timeout: 10,
        // ID tokens are verified against the provider's published keys even though they come
        // straight from its token endpoint: a forged one is refused, not trusted for the channel.
        execute: [
          client.enableNonRepudiationChecks,
          ...(url.protocol === 'http:' ? [client.allowInsecureRequests] : []),
        ],
      }),
    )
    this.cache.set(key, { at: Date.now(), config })
    config.catch(() => this.cache.delete(key))
    return config
  }
}
