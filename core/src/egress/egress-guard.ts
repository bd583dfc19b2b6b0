import { BlockList, isIP } from 'node:net'
import http from 'node:http'
import https from 'node:https'
import { lookup as dnsLookup } from 'node:dns/promises'
import type { LookupFunction } from 'node:net'
import { EVT } from '../errors.js'

// Loopback, private, link-local, cloud metadata, carrier-grade NAT, benchmarking, multicast,
// reserved and documentation ranges, and the IPv6 forms that embed or translate IPv4.
const BLOCKED_V4 = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.88.99.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
]
const BLOCKED_V6 = [
  '::/128',
  '::1/128',
  '::/96',
  '64:ff9b::/96',
  '64:ff9b:1::/48',
  '100::/64',
  '2001::/32',
  '2001:db8::/32',
  '2002::/16',
  'fc00::/7',
  'fe80::/10',
  'fec0::/10',
  'ff00::/8',
]

const blocked = new BlockList()
for (const c of BLOCKED_V4) blocked.addSubnet(c.split('/')[0]!, Number(c.split('/')[1]), 'ipv4')
for (const c of BLOCKED_V6) blocked.addSubnet(c.split('/')[0]!, Number(c.split('/')[1]), 'ipv6')

/** `::ffff:a.b.c.d` (or its hex spelling) as the IPv4 address it stands for. */
function unmapped(address: string): string | null {
  const lower = address.toLowerCase()
  const dotted = /^(?:0{0,4}:){0,4}:?(?:0{0,4}:)?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower)
  if (dotted) return dotted[1]!
  const hex = /^(?:0{0,4}:){0,4}:?(?:0{0,4}:)?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower)
  if (hex) {
    const hi = parseInt(hex[1]!, 16)
    const lo = parseInt(hex[2]!, 16)
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`
  }
  return null
}

export interface ResolvedTarget {
  url: URL
  host: string
  address: string
  family: 4 | 6
}

/**
 * Outbound HTTP for webhooks (and the plugin host's ctx.http.fetch): resolves the host itself,
 * refuses non-public addresses unless the operator allow-listed them (TRELLIS_EGRESS_ALLOW),
 * and hands the connection the very address it checked, so DNS rebinding cannot swap it.
 */
export class EgressGuard {
  private readonly allowHosts = new Set<string>()
  private readonly allowNets = new BlockList()
  // Keep-alive agents, one per checked address (and host, for TLS): a reused connection goes
  // to the address that was checked, like a new one.
  private readonly agents = new Map<string, http.Agent>()

  constructor(allow: readonly string[] = []) {
    for (const raw of allow) {
      const entry = raw.trim().toLowerCase()
      if (!entry) continue
      const [ip, bits] = entry.split('/')
      const family = isIP(ip!.replace(/^\[|\]$/g, ''))
      if (family) {
        const addr = ip!.replace(/^\[|\]$/g, '')
        const type = family === 4 ? 'ipv4' : 'ipv6'
        if (bits === undefined) this.allowNets.addAddress(addr, type)
        else this.allowNets.addSubnet(addr, Number(bits), type)
      } else this.allowHosts.add(entry)
    }
  }

  /** Did the operator allow-list this host name (its addresses are then not checked)? */
  allowsName(host: string): boolean {
    return this.allowHosts.has(host.trim().toLowerCase())
  }

  /** Is a connection to this address permitted? */
  allowsAddress(address: string): boolean {
    const bare = address.replace(/^\[|\]$/g, '')
    const family = isIP(bare)
    if (family === 0) return false
    const v4 = family === 4 ? bare : unmapped(bare)
    if (v4 !== null) {
      if (this.allowNets.check(v4, 'ipv4')) return true
      return !blocked.check(v4, 'ipv4')
    }
    if (this.allowNets.check(bare, 'ipv6')) return true
    return !blocked.check(bare, 'ipv6')
  }

  /**
   * Parses `target` (WHATWG URL: decimal, octal and hex IPv4 spellings come out dotted) and
   * resolves it to one permitted address, or throws EVT_ERR_EGRESS_DENIED.
   */
  async resolve(target: string | URL): Promise<ResolvedTarget> {
    const url = typeof target === 'string' ? new URL(target) : target
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw EVT.EGRESS_DENIED({ host: url.protocol })
    const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase()
    const literal = isIP(host)
    if (literal) {
      if (!this.allowsAddress(host)) throw EVT.EGRESS_DENIED({ host, address: host })
      return { url, host, address: host, family: literal as 4 | 6 }
    }
    const hostAllowed = this.allowHosts.has(host)
    const addresses = await dnsLookup(host, { all: true, verbatim: true })
    // Every address the name resolves to must be permitted: a name that also points inside is refused.
    for (const a of addresses) {
      if (!hostAllowed && !this.allowsAddress(a.address)) throw EVT.EGRESS_DENIED({ host, address: a.address })
    }
    const first = addresses[0]
    if (!first) throw EVT.EGRESS_DENIED({ host })
    return { url, host, address: first.address, family: first.family as 4 | 6 }
  }

  /** A keep-alive agent whose connections all go to `resolved.address`. */
  agentFor(resolved: ResolvedTarget): http.Agent {
    const key = `${resolved.url.protocol}|${resolved.address}|${resolved.host}|${resolved.url.port}`
    let agent = this.agents.get(key)
    if (!agent) {
      if (this.agents.size >= 256) {
        const [oldestKey, oldest] = this.agents.entries().next().value as [string, http.Agent]
        oldest.destroy()
        this.agents.delete(oldestKey)
      }
      const opts = { keepAlive: true, maxSockets: 32, keepAliveMsecs: 1000, lookup: EgressGuard.pinnedLookup(resolved) }
      agent = resolved.url.protocol === 'https:' ? new https.Agent(opts) : new http.Agent(opts)
      this.agents.set(key, agent)
    }
    return agent
  }

  /** Closes kept-alive connections. */
  close(): void {
    for (const a of this.agents.values()) a.destroy()
    this.agents.clear()
  }

  /** A `lookup` for node:http/net that answers with the address already checked. */
  static pinnedLookup(resolved: ResolvedTarget): LookupFunction {
    return ((_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
      if (options?.all) callback(null, [{ address: resolved.address, family: resolved.family }])
      else callback(null, resolved.address, resolved.family)
    }) as unknown as LookupFunction
  }
}

/** TRELLIS_EGRESS_ALLOW: comma-separated hosts, addresses and CIDRs. */
export function parseEgressAllow(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
}
