import t from 'tap'
import { Writable } from 'node:stream'
import { createLogger } from '../src/observability/logger.js'
import { startTestKernel, createTenantWithAdmin, DB_KINDS } from './helpers/test-kernel.js'

t.test('request logs are JSON lines with the request id and the tenant id, and no secrets', async (t) => {
  const lines: any[] = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l))
      done()
    },
  })
  const k = await startTestKernel(t, DB_KINDS[0]!, { logger: createLogger('info', sink) })
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
})
