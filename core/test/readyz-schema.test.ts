import t from 'tap'
import { Writable } from 'node:stream'
import { createLogger } from '../src/observability/logger.js'
import { DB_KINDS, startTestKernel } from './helpers/test-kernel.js'

// /readyz tells a load balancer not to send traffic to a kernel whose database schema is behind
// its code: here the schema really is put behind (the newest migration undone) and brought back.
for (const kind of DB_KINDS) {
  t.test(`/readyz and the database schema on ${kind}`, async (t) => {
    const lines: Array<Record<string, any>> = []
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)))
        done()
      },
    })
    const k = await startTestKernel(t, kind, { logger: createLogger('info', sink) })
    const db = k.kernel.ctx.db

    const ready = await k.req('GET', '/readyz')
    t.equal(ready.status, 200, 'ready with every migration run')
    t.same(ready.body, { status: 'ready' })

    const undone = await db.migrate('down')
    t.equal(undone.length, 1, 'the newest migration was undone')
    const behind = await k.req('GET', '/readyz')
    t.equal(behind.status, 503, 'not ready while the schema is behind the code')
    t.equal(behind.body.code, 'KRN_ERR_SCHEMA_BEHIND')
    t.match(behind.body.detail, undone[0]!, 'the answer names the pending migration')
    t.equal((await k.req('GET', '/healthz')).status, 200, 'the process itself is still up')
    const logged = lines.filter((l) => l.code === 'KRN_ERR_SCHEMA_BEHIND')
    t.equal(logged.length, 1, 'the operator reads one line about it')
    t.equal(logged[0]?.level, 40, 'at warn: a state of the deployment, not a fault of the process')
    t.notOk(logged[0]?.err, 'without a stack trace')
    t.match(logged[0]?.msg, /needs migrations/)

    t.same(await db.migrate('up'), undone, 'migrating up runs exactly what was undone')
    const again = await k.req('GET', '/readyz')
    t.equal(again.status, 200, 'ready again once the schema has caught up')
  })
}
