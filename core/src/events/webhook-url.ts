import { isIP } from 'node:net'
import type { EgressGuard } from '../egress/egress-guard.js'
import { EVT } from '../errors.js'

/** What checking a webhook URL needs of the egress guard. */
export type WebhookEgress = Pick<EgressGuard, 'allowsAddress' | 'resolve'>

const VERDICTS_KEPT = 1024

/**
 * The guard with its verdicts on address literals remembered: a guard's allow-list is fixed when
 * it is made, so an address's verdict never changes, while asking node's BlockList builds a
 * SocketAddress per check (two per address: about 90 µs of CPU per endpoint created, profiled
 * under load).
 */
export function rememberingVerdicts(egress: WebhookEgress): WebhookEgress {
  const verdicts = new Map<string, boolean>()
  return {
    resolve: (target) => egress.resolve(target),
    allowsAddress: (address) => {
      let allowed = verdicts.get(address)
      if (allowed === undefined) {
        allowed = egress.allowsAddress(address)
        if (verdicts.size >= VERDICTS_KEPT) verdicts.clear()
        verdicts.set(address, allowed)
      }
      return allowed
    },
  }
}

/** Refuses what can never be delivered: not http(s), credentials in the URL, or a non-public address literal. */
export async function checkUrl(egress: WebhookEgress, raw: string): Promise<string> {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw EVT.URL_NOT_ALLOWED({ reason: 'not a URL' })
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw EVT.URL_NOT_ALLOWED({ reason: 'must be http or https' })
  if (url.username || url.password) throw EVT.URL_NOT_ALLOWED({ reason: 'must not carry credentials' })
  const host = url.hostname.replace(/^\[|\]$/g, '')
  // Literal addresses are checked now (WHATWG URL has already turned 2130706433 or 0x7f.1 into
  // 127.0.0.1); names are checked again at every delivery, when they are resolved.
  if (isIP(host) && !egress.allowsAddress(host))
    throw EVT.URL_NOT_ALLOWED({ reason: `${host} is a loopback, private, link-local or reserved address` })
  if (!isIP(host)) {
    try {
      await egress.resolve(url)
    } catch (err) {
      if (EVT.EGRESS_DENIED.is(err)) throw EVT.URL_NOT_ALLOWED({ reason: (err as Error).message })
      // An unresolvable name is accepted: DNS may not be set up yet; deliveries will say so.
    }
  }
  return url.toString()
}
