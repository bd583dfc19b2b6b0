// The typed-error contract for plugins: a first-party plugin's refusal over HTTP has exactly the
// kernel's problem+json shape ({ type, title, status, code, detail, instance }, the same media
// type), with the plugin's own code and title from its catalog.
import t from 'tap'
import { startErpKernel } from '../plugins/support/kernel.js'
import { CAT } from '../plugins/catalog/src/errors.js'
import { DB_KINDS } from '../core/test/helpers/test-kernel.js'

// One kernel per database, shared by every test of the file.
for (const kind of DB_KINDS)
  t.test(`on ${kind}`, async (t) => {
    const dev = await startErpKernel(['catalog'], {}, kind)
    t.teardown(() => dev.close())

    t.test('a plugin refusal and a kernel refusal have the same shape', async (t) => {
      const kernel = await dev.request('GET', '/v1/x/no-such-plugin/anything')
      t.equal(kernel.status, 404)
      const plugin = await dev.request('GET', '/v1/x/catalog/products/NO-SUCH-SKU?view=full')
      t.equal(plugin.status, 404)
      const body = plugin.body as Record<string, unknown>
      t.same(
        Object.keys(body).sort(),
        Object.keys(kernel.body as object).sort(),
        "the same members as the kernel's problem",
      )
      t.same(body, {
        type: 'urn:trellis:error:CAT_ERR_PRODUCT_NOT_FOUND',
        title: CAT.PRODUCT_NOT_FOUND.title,
        status: 404,
        code: 'CAT_ERR_PRODUCT_NOT_FOUND',
        detail: 'no product NO-SUCH-SKU',
        instance: '/v1/x/catalog/products/NO-SUCH-SKU?view=full',
      })
      t.match(plugin.headers['content-type'], /^application\/problem\+json/)
      t.equal(plugin.headers['content-type'], kernel.headers['content-type'], 'the same media type')
      t.match((kernel.body as { type: string }).type, /^urn:trellis:error:/)
    })

    t.test('extension members ride along, never over the standard ones', async (t) => {
      const res = await dev.request('POST', '/v1/x/catalog/import/products', { body: { csv: 'nope,wrong\n1,2\n' } })
      t.equal(res.status, 422)
      const body = res.body as Record<string, unknown>
      t.equal(body.code, 'CAT_ERR_CSV_HEADER')
      t.equal(body.type, 'urn:trellis:error:CAT_ERR_CSV_HEADER')
      t.equal(body.title, CAT.CSV_HEADER.title)
      t.ok(Array.isArray(body.missingColumns), "the plugin's extension member is kept")
    })
  })
