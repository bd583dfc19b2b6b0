import t from 'tap'
import { Writable } from 'node:stream'
import { createLogger } from '../src/observability/logger.js'
import { startTestKernel, createTenantWithAdmin, DB_KINDS } from './helpers/test-kernel.js'

for (const kind of DB_KINDS)
  t.test(`request logs are JSON lines with the request id and the tenant id, and no secrets on ${kind}`, async (t) => {
    const lines: any[] = []
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l))
        done()
      },
    })
    const k = await startTestKernel(t, kind, { logger: createLogger('info', sink) })
    const a = await createTenantWithAdmin(k, 'logged')
    const r = await k.req('GET', '/v1/me', { token: a.token, headers: { 'x-request-id': 'log-probe-1' } })
    t.equal(r.status, 200)
    const mine = lines.filter((l) => l.reqId === 'log-probe-1')
    t.ok(mine.length >= 2, 'incoming and completed')
    const done = mine.find((l) => l.res?.statusCode === 200)
    t.ok(done, 'the completed line carries the status')
    t.equal(done.tenantId, a.orgId)
    t.equal(done.service, 'trellis')
    const all = JSON.stringify(lines)
    t.notOk(all.includes(a.token), 'access tokens are never logged')
    t.notOk(all.includes(a.password), 'passwords are never logged')

    t.test('a token put in the query string is refused and not logged', async (t) => {
      const from = lines.length
      const url = `/v1/me?access_token=${encodeURIComponent(a.token)}&refresh_token=trr_secret_refresh&api_key=trk_secret_key&view=full`
      const r = await k.req('GET', url, { headers: { 'x-request-id': 'log-probe-query' } })
      t.equal(r.status, 401, 'a query-string token is not a credential')
      t.equal(r.body.code, 'AUTH_ERR_UNAUTHENTICATED')
      t.notOk(JSON.stringify(r.body).includes(a.token), 'nor echoed in the problem')
      const mine = lines.slice(from).filter((l) => l.reqId === 'log-probe-query')
      const incoming = mine.find((l) => l.req?.url)
      t.ok(incoming, 'the request is logged')
      t.match(
        incoming.req.url,
        /^\/v1\/me\?access_token=\[redacted\]&refresh_token=\[redacted\]&api_key=\[redacted\]&view=full$/,
      )
      const text = JSON.stringify(lines.slice(from))
      for (const secret of [a.token, 'trr_secret_refresh', 'trk_secret_key'])
        t.notOk(text.includes(secret), 'the credentials are nowhere in the log')
    })

    t.test('credential-named fields and headers are redacted wherever they are logged', async (t) => {
      const from = lines.length
      k.kernel.ctx.logger.info(
        {
          password: 'pw-top',
          refreshToken: 'rt-top',
          headers: { authorization: 'Bearer hdr-secret', cookie: 'sid=cookie-secret' },
          req: { headers: { authorization: 'Bearer req-secret', cookie: 'c=req-cookie' } },
          res: { headers: { 'set-cookie': 'sid=set-cookie-secret' } },
          body: {
            accessToken: 'at-nested',
            apiKey: 'key-nested',
            clientSecret: 'cs-nested',
            credentials: { password: 'pw-deep', secret: 'secret-deep' },
          },
          kept: 'visible',
        },
        'probe',
      )
      const text = JSON.stringify(lines.slice(from))
      for (const secret of [
        'pw-top',
        'rt-top',
        'hdr-secret',
        'cookie-secret',
        'req-secret',
        'req-cookie',
        'set-cookie-secret',
        'at-nested',
        'key-nested',
        'cs-nested',
        'pw-deep',
        'secret-deep',
      ])
        t.notOk(text.includes(secret), secret)
      t.ok(text.includes('visible'), 'other fields are kept')
    })
  })
