/**
 * What never reaches a log line: credentials in query strings, headers and logged objects.
 * Query parameters and object keys are matched by name, case-insensitively.
 */
const SECRET_NAME =
  /^(access[_-]?token|refresh[_-]?token|id[_-]?token|token|api[_-]?key|apikey|key|secret|client[_-]?secret|password|passwd|pwd|authorization|auth|cookie|session|sig|signature|code)$/i

export const REDACTED = '[redacted]'

/** The URL with the value of every credential-like query parameter replaced. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?')
  if (q < 0) return url
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=')
      const name = eq < 0 ? pair : pair.slice(0, eq)
      let decoded = name
      try {
        decoded = decodeURIComponent(name.replace(/\+/g, ' '))
      } catch {
        // A malformed name is kept as it is; its value is hidden all the same below if it matches.
      }
      return eq >= 0 && SECRET_NAME.test(decoded.trim()) ? `${name}=${REDACTED}` : pair
    })
    .join('&')
  return `${url.slice(0, q)}?${query}`
}

const SECRET_KEYS = [
  'password',
  'newPassword',
  'currentPassword',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'token',
  'secret',
  'clientSecret',
  'client_secret',
  'apiKey',
  'api_key',
  'authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
]

/**
 * pino `redact` paths: the credential-carrying headers of requests and responses, and
 * credential-named fields at the top of a log line and up to two levels into logged objects.
 */
export const REDACT_PATHS: string[] = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  ...SECRET_KEYS.flatMap((key) => {
    if (!/^[A-Za-z_$][\w$]*$/.test(key)) return [`*["${key}"]`, `*.*["${key}"]`]
    return [key, `*.${key}`, `*.*.${key}`]
  }),
]
