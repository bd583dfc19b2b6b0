// Each tenant's API description lists only what it has installed (at its installed version and
// mount), /docs serves the same document as /openapi.json, and a body that fails a plugin route's
// declared schema answers the same problem as a kernel route: the field named, what is allowed.
import t from 'tap'
import { builtFixture, registerVersion } from '../core/test/helpers/plugin-versions.js'
import { createTenantWithAdmin, DB_KINDS, startTestKernel } from '../core/test/helpers/test-kernel.js'

const notes = await builtFixture('notes')
const relay = await builtFixture('relay')
// A status with a fixed set of values, to see them named when a body breaks the rule.
const notesRoute = notes.manifest.routes.find((r: { path: string }) => r.path === '/notes')
notesRoute.request.body.properties.status = { type: 'string', enum: ['draft', 'final'] }

const pathsOf = (doc: { paths: Record<string, unknown> }) => Object.keys(doc.paths)
const pluginPaths = (doc: { paths: Record<string, unknown> }) => pathsOf(doc).filter((p) => p.startsWith('/v1/x/'))

for (const kind of DB_KINDS) {
  t.test(`the API description and plugin-route problems on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind, { plugins: { sandboxWorkers: 1 } })
    await registerVersion(k, notes)
    await registerVersion(k, relay)
    const a = await createTenantWithAdmin(k, `oa-a-${kind}`)
    const b = await createTenantWithAdmin(k, `oa-b-${kind}`)
    const installed = await k.req('POST', '/v1/installations', {
      token: a.token,
      body: { plugin: '@acme/notes', version: '1.0.0', capabilities: notes.manifest.capabilities, mount: 'jottings' },
    })
    t.equal(installed.status, 201, JSON.stringify(installed.body))

    t.test("a tenant's document lists only what it installed, where it is mounted", async (t) => {
      const anonymous = await k.req('GET', '/openapi.json')
      t.equal(anonymous.status, 200)
      t.ok(pluginPaths(anonymous.body).includes('/v1/x/notes/notes'), 'without a credential: every available plugin')
      t.ok(pluginPaths(anonymous.body).some((p) => p.startsWith('/v1/x/relay/')))

      const mine = await k.req('GET', '/openapi.json', { token: a.token })
      t.equal(mine.status, 200)
      t.ok(pluginPaths(mine.body).includes('/v1/x/jottings/notes'), 'the installed plugin, at its mount')
      t.ok(pluginPaths(mine.body).includes('/v1/x/jottings/notes/{id}'))
      t.notOk(
        pluginPaths(mine.body).some((p) => p.startsWith('/v1/x/relay/') || p.startsWith('/v1/x/notes/')),
        'nothing it did not install',
      )
      t.same(
        mine.body.tags
          .filter((tag: { name: string }) => tag.name.startsWith('@'))
          .map((tag: { name: string }) => tag.name),
        ['@acme/notes'],
      )
      t.ok(mine.body.paths['/v1/me'], 'the kernel routes are there')
      t.match(mine.headers['cache-control'], /private|no-store/, 'a credentialed document is not kept by shared caches')

      const other = await k.req('GET', '/openapi.json', { token: b.token })
      t.same(pluginPaths(other.body), [], 'a tenant that installed nothing sees no plugin routes')
      t.ok(other.body.paths['/v1/me'])

      const ids = new Set<string>()
      for (const item of Object.values(mine.body.paths as Record<string, Record<string, { operationId?: string }>>))
        for (const op of Object.values(item)) {
          t.ok(op.operationId && !ids.has(op.operationId), `operationId ${op.operationId}`)
          ids.add(op.operationId!)
        }
    })

    t.test('/docs shows the same document as /openapi.json, for the same caller', async (t) => {
      t.same(
        (await k.req('GET', '/docs/json', { token: a.token })).body,
        (await k.req('GET', '/openapi.json', { token: a.token })).body,
      )
      t.same((await k.req('GET', '/docs/json')).body, (await k.req('GET', '/openapi.json')).body)
    })

    t.test('a body that fails a plugin route schema answers like a kernel route', async (t) => {
      const before = await k.ownerSql(`select count(*)::int as n from plugin_records where tenant_id = ?`, [a.orgId])
      const bad = await k.req('POST', '/v1/x/jottings/notes', { token: a.token, body: { title: 'x', status: 'sent' } })
      t.equal(bad.status, 400)
      t.equal(bad.headers['content-type'], 'application/problem+json; charset=utf-8')
      t.equal(bad.body.code, 'KRN_ERR_VALIDATION_FAILED')
      t.equal(bad.body.detail, 'body/status must be equal to one of the allowed values (allowed: "draft", "final")')
      t.same(bad.body.problems, [
        {
          in: 'body',
          pointer: '/status',
          message: 'must be equal to one of the allowed values',
          allowedValues: ['draft', 'final'],
        },
      ])

      const unknown = await k.req('POST', '/v1/x/jottings/notes', {
        token: a.token,
        body: { title: 'x', colour: 'red' },
      })
      t.equal(unknown.body.code, 'KRN_ERR_VALIDATION_FAILED')
      t.match(unknown.body.detail, /^body must NOT have additional properties \("colour" is not one of its fields\)/)
      t.match(unknown.body.problems, [
        { in: 'body', field: 'colour', allowedValues: ['fail', 'status', 'tags', 'title'] },
      ])

      const missing = await k.req('POST', '/v1/x/jottings/notes', { token: a.token, body: { tags: [] } })
      t.match(missing.body.problems, [{ in: 'body', field: 'title', message: "must have required property 'title'" }])

      // A kernel route with the same kind of mistake: the same shape.
      const kernel = await k.req('POST', '/v1/webhooks', {
        token: a.token,
        body: { url: 'https://example.test/hook', types: ['orders.order.placed'], colour: 'red' },
      })
      t.equal(kernel.status, 400)
      t.equal(kernel.body.code, 'KRN_ERR_VALIDATION_FAILED')
      t.match(kernel.body.problems, [{ in: 'body', pointer: '', field: 'colour' }])
      t.same(Object.keys(kernel.body).sort(), Object.keys(unknown.body).sort(), 'the same problem members')

      const after = await k.ownerSql(`select count(*)::int as n from plugin_records where tenant_id = ?`, [a.orgId])
      t.equal(after[0].n, before[0].n, 'nothing was written')
    })
  })
}
