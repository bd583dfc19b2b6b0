/**
 * What a tenant is told about a delivery attempt that got no HTTP answer. The resolver's and the
 * socket's own text can name internal hosts and addresses, so it goes to the operator's log only;
 * the tenant sees one of a few fixed reasons.
 */
export function publicDeliveryError(err: unknown): string {
  const code = (err as { code?: string } | null)?.code ?? ''
  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NODATA':
    case 'EAI_NONAME':
      return 'could not resolve host'
    case 'ECONNREFUSED':
      return 'connection refused'
    case 'ECONNRESET':
    case 'EPIPE':
      return 'connection reset'
    case 'ETIMEDOUT':
    case 'ECONNECTTIMEOUT':
    case 'ESOCKETTIMEDOUT':
      return 'timed out'
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable'
    case 'EVT_ERR_EGRESS_DENIED':
      return 'address not allowed'
    default:
      if (code.startsWith('ERR_TLS') || code.includes('CERT') || code === 'EPROTO') return 'TLS handshake failed'
      return 'request failed'
  }
}
