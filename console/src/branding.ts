/** The branding for this host (a partner's custom domain), or, signed in, the caller's organisation's. */
export interface Branding {
  displayName?: string
  logoUrl?: string
  primaryColor?: string
}

export async function loadBranding(token?: string): Promise<Branding> {
  const url = token ? '/v1/branding' : `/v1/branding?domain=${encodeURIComponent(location.hostname)}`
  const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {})
  if (!res.ok) return {}
  return ((await res.json()) as { branding: Branding }).branding
}

export function applyBranding(b: Branding): void {
  if (b.primaryColor) document.documentElement.style.setProperty('--brand', b.primaryColor)
  document.title = b.displayName ?? 'Console'
}
