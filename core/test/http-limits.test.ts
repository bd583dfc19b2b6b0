import t from 'tap'
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { createKernel } from '../src/kernel.js'
import { loadConfig } from '../src/config.js'
import { createPlatformAdmin } from '../src/bootstrap.js'
import { ADMIN, DB_KINDS, createTestDatabase, testEmbeddedTemplate } from './helpers/test-kernel.js'
import { createMarketplace } from '@trellis/marketplace'

// The kernel as an operator starts it: the sign-in limit and the server timeouts are the defaults
// (the shared test kernel raises the sign-in limit for suites that sign in many times).
for (const kind of DB_KINDS)
  t.test(`the HTTP server limits, with their defaults, on ${kind}`, async (t) => {
    const env: NodeJS.ProcessEnv = {
      LOG_LEVEL: 'silent',
      TRELLIS_SECRET_KEY: randomBytes(32).toString('hex'),
      TRELLIS_DATA_DIR: '/tmp/trellis-test-unused',
      PORT: '0',
    }
    if (kind === 'postgres') {
      const db = await createTestDatabase()
      t.teardown(db.drop)
      env.DATABASE_URL = db.url
    }
    const kernel = await createKernel({
      config: loadConfig(env),
      embeddedDir: 'memory://',
      ...(kind === 'pglite' ? { embeddedTemplate: await testEmbeddedTemplate() } : {}),
      migrate: true,
      rateLimitPerMinute: 100_000,
      plugins: { sandboxWorkers: 1 },
      extensions: [createMarketplace()],
    })
    t.teardown(() => kernel.close())
    await createPlatformAdmin(kernel.ctx, ADMIN)
    const from = (remoteAddress: string) => (url: string, payload: unknown) =>
      kernel.app.inject({
        method: 'POST',
        url,
        remoteAddress,
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify(payload),
      })

    t.test('sign-in is limited to 120 a minute per client address, before any password is checked', async (t) => {
      const attacker = from('10.0.0.7')
      // Bodies that fail validation cost no password hashing, but count all the same.
      for (let i = 0; i < 119; i++) t.equal((await attacker('/v1/auth/login', { email: 'x' })).statusCode, 400)
      const last = await attacker('/v1/auth/login', { email: ADMIN.email, password: ADMIN.password })
      t.equal(last.statusCode, 200, 'the 120th, with the right password, still signs in')
      const over = await attacker('/v1/auth/login', { email: ADMIN.email, password: ADMIN.password })
      t.equal(over.statusCode, 429)
      t.equal(over.json().code, 'KRN_ERR_RATE_LIMITED')
      t.ok(Number(over.headers['retry-after']) >= 1 && Number(over.headers['retry-after']) <= 60)
      t.equal(over.headers['x-ratelimit-limit'], '120')
      const other = await from('10.0.0.8')('/v1/auth/login', { email: ADMIN.email, password: ADMIN.password })
      t.equal(other.statusCode, 200, 'another address is not affected')
    })

    t.test('token refresh has its own limit per client address', async (t) => {
      const attacker = from('10.0.0.9')
      for (let i = 0; i < 120; i++)
        t.equal(
          (await attacker('/v1/auth/refresh', { refreshToken: `trr_guess_${i}` })).json().code,
          'AUTH_ERR_INVALID_REFRESH_TOKEN',
        )
      const over = await attacker('/v1/auth/refresh', { refreshToken: 'trr_guess_last' })
      t.equal(over.statusCode, 429)
      t.equal(over.json().code, 'KRN_ERR_RATE_LIMITED')
      t.ok(Number(over.headers['retry-after']) >= 1)
    })

    t.test('the server has request, header, idle and keep-alive timeouts', async (t) => {
      const server = kernel.app.server
      t.equal(server.requestTimeout, 120_000)
      t.equal(server.headersTimeout, 30_000)
      t.equal(server.timeout, 120_000)
      t.equal(server.keepAliveTimeout, 72_000)
      const custom = loadConfig({
        ...env,
        TRELLIS_HTTP_REQUEST_TIMEOUT_MS: '5000',
        TRELLIS_HTTP_HEADERS_TIMEOUT_MS: '2000',
        TRELLIS_HTTP_IDLE_TIMEOUT_MS: '7000',
        TRELLIS_HTTP_KEEP_ALIVE_TIMEOUT_MS: '4000',
        TRELLIS_AUTH_RATE_LIMIT_PER_MINUTE: '10',
      })
      t.same(custom.httpLimits, {
        requestTimeoutMs: 5000,
        headersTimeoutMs: 2000,
        idleTimeoutMs: 7000,
        keepAliveTimeoutMs: 4000,
        authRateLimitPerMinute: 10,
      })
      t.throws(() => loadConfig({ ...env, TRELLIS_HTTP_REQUEST_TIMEOUT_MS: 'soon' }), {
        code: 'KRN_ERR_CONFIG_INVALID',
      })
      t.throws(
        () => loadConfig({ ...env, TRELLIS_HTTP_REQUEST_TIMEOUT_MS: '1000', TRELLIS_HTTP_HEADERS_TIMEOUT_MS: '2000' }),
        { code: 'KRN_ERR_CONFIG_INVALID' },
      )
    })

    t.test('over a real socket, a refused request is answered at once without its body being sent', async (t) => {
      const base = new URL(await kernel.listen())
      const login = await from('10.0.0.10')('/v1/auth/login', { email: ADMIN.email, password: ADMIN.password })
      const token = login.json().accessToken as string
      // Sends only the head of a request announcing a 512 MiB body; resolves with what comes back
      // once the server has answered and closed the connection.
      const announce = (path: string, headers: Record<string, string>) =>
        new Promise<{ head: string; body: string; closed: boolean }>((resolve, reject) => {
          const socket = connect(Number(base.port), base.hostname)
          let data = ''
          socket.setEncoding('utf8')
          socket.on('data', (chunk) => (data += chunk))
          socket.on('error', reject)
          socket.on('close', () => {
            const [head = '', body = ''] = data.split('\r\n\r\n')
            resolve({ head, body, closed: true })
          })
          const all = { 'content-type': 'application/json', ...headers, 'content-length': '536870912' }
          const lines = [
            `POST ${path} HTTP/1.1`,
            `Host: ${base.host}`,
            ...Object.entries(all).map(([k, v]) => `${k}: ${v}`),
          ]
          socket.write(`${lines.join('\r\n')}\r\n\r\n`)
        })
      const anonymous = await announce('/v1/webhooks', {})
      t.match(anonymous.head, /^HTTP\/1\.1 401 /)
      t.match(anonymous.head, /\r\nconnection: close/i, 'the server closes rather than reading the body')
      t.match(anonymous.body, /AUTH_ERR_UNAUTHENTICATED/)
      const upload = await announce('/v1/marketplace/plugins/@acme/widgets/versions', {
        'content-type': 'multipart/form-data; boundary=x',
      })
      t.match(upload.head, /^HTTP\/1\.1 401 /, 'an upload without credentials too')
      const tooLarge = await announce('/v1/tenants', { authorization: `Bearer ${token}` })
      t.match(tooLarge.head, /^HTTP\/1\.1 413 /)
      t.match(tooLarge.head, /\r\nconnection: close/i)
      t.match(tooLarge.body, /KRN_ERR_PAYLOAD_TOO_LARGE/)
    })
  })
