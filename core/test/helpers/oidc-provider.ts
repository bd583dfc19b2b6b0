import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { generateKeyPair, exportJWK, SignJWT, decodeJwt, decodeProtectedHeader, type JWK } from 'jose'
import Provider from 'oidc-provider'

export interface TestAccount {
  email: string
  name?: string
  emailVerified?: boolean
  groups?: string[]
}

/** How the token endpoint's ID token is tampered with, to attack the relying party. */
export type Tamper =
  | undefined
  /** Re-signed with a key the provider never published (same kid). */
  | 'forged'
  /** Validly signed by the provider, but for another client. */
  | 'wrong-audience'

export interface TestOidcProvider {
  issuer: string
  clientId: string
  clientSecret: string
  accounts: Map<string, TestAccount>
  /** Set to attack the next token responses. */
  tamper: Tamper
  /**
   * Plays the browser at the provider: follows the authorization URL, signs in as `accountId`
   * on the development login page, consents, and returns the URL the provider sends the browser
   * back to (the relying party's redirect URI with code and state).
   */
  authorize(authorizationUrl: string, accountId: string): Promise<URL>
  close(): Promise<void>
}

/** A real OpenID provider (the `oidc-provider` package) on loopback, with one confidential client. */
export async function startOidcProvider(redirectUri: string): Promise<TestOidcProvider> {
  const accounts = new Map<string, TestAccount>()
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const jwk: JWK = { ...(await exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' }
  let handler: http.RequestListener = (_q, s) => s.end()
  const server = http.createServer((q, s) => handler(q, s))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const clientId = 'trellis-test'
  const clientSecret = 'a-client-secret-of-sufficient-length-0123456789'
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [jwk as never] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'groups'] },
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx: unknown, id: string) {
      const a = accounts.get(id)
      if (!a) return undefined
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            email: a.email,
            email_verified: a.emailVerified ?? true,
            name: a.name ?? a.email,
            ...(a.groups ? { groups: a.groups } : {}),
          }
        },
      }
    },
  })
  const callback = provider.callback()
  const state: TestOidcProvider = {
    issuer,
    clientId,
    clientSecret,
    accounts,
    tamper: undefined,
    async authorize(authorizationUrl, accountId) {
      const jar = new Map<string, string>()
      const cookies = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
      const remember = (res: Response) => {
        for (const c of res.headers.getSetCookie()) {
          const [pair] = c.split(';')
          const i = pair!.indexOf('=')
          jar.set(pair!.slice(0, i), pair!.slice(i + 1))
        }
      }
      let url = new URL(authorizationUrl)
      let body: URLSearchParams | undefined
      for (let hop = 0; hop < 20; hop++) {
        if (url.href.startsWith(redirectUri)) return url
        const res = await fetch(url, {
          method: body ? 'POST' : 'GET',
          redirect: 'manual',
          headers: { cookie: cookies(), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
          body,
        })
        remember(res)
        body = undefined
        const location = res.headers.get('location')
        if (location) {
          url = new URL(location, url)
          continue
        }
        const html = await res.text()
        if (html.includes('name="prompt" value="login"'))
          body = new URLSearchParams({ prompt: 'login', login: accountId, password: 'any' })
        else if (html.includes('name="prompt" value="consent"')) body = new URLSearchParams({ prompt: 'consent' })
        else throw new Error(`the provider answered ${res.status}: ${html.slice(0, 500)}`)
      }
      throw new Error('too many redirects at the provider')
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
  const attacker = await generateKeyPair('RS256', { extractable: true })
  handler = (req, res) => {
    if (!state.tamper || req.method !== 'POST' || !req.url?.startsWith('/token')) return callback(req, res)
    // Attack the relying party: rewrite the ID token in the provider's genuine token response.
    const chunks: Buffer[] = []
    const write = res.write.bind(res)
    const end = res.end.bind(res)
    res.write = ((c: Buffer | string) => {
      chunks.push(Buffer.from(c))
      return true
    }) as typeof res.write
    res.end = ((c?: Buffer | string) => {
      if (c) chunks.push(Buffer.from(c))
      const answer = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      const claims = decodeJwt(answer.id_token)
      const header = decodeProtectedHeader(answer.id_token)
      const forged = state.tamper === 'forged'
      void new SignJWT({ ...claims, ...(forged ? {} : { aud: 'another-client' }) })
        .setProtectedHeader({ alg: 'RS256', kid: header.kid })
        .sign(forged ? attacker.privateKey : privateKey)
        .then((idToken) => {
          const out = Buffer.from(JSON.stringify({ ...answer, id_token: idToken }))
          res.setHeader('content-length', out.length)
          write(out)
          end()
        })
      return res
    }) as typeof res.end
    return callback(req, res)
  }
  return state
}
