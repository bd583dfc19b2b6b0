// A plugin route's declared query parameters and responses are in the API description.
import t from 'tap'
import { withPluginPaths } from '../core/src/plugins/openapi.js'

const manifest = {
  name: '@acme/stock',
  version: '1.0.0',
  description: 'Stock',
  routes: [
    {
      method: 'GET',
      path: '/levels/:sku',
      request: {
        params: { type: 'object', properties: { sku: { type: 'string', maxLength: 40 } } },
        query: {
          type: 'object',
          required: ['warehouse'],
          properties: {
            warehouse: { type: 'string', description: 'Warehouse code' },
            unit: { type: 'string', enum: ['each', 'case'] },
          },
        },
      },
      response: { 200: { type: 'object', properties: { qty: { type: 'integer' } } } },
    },
  ],
}

t.test('query parameters and responses of a plugin route', async (t) => {
  const db = { inOrg: async (_org: string, fn: (tx: unknown) => unknown) => fn({ sql: async () => [{ manifest }] }) }
  const spec = await withPluginPaths({ db } as never, { paths: {} })
  const op = (spec.paths as Record<string, Record<string, any>>)['/v1/x/stock/levels/{sku}']!.get
  t.same(op.parameters, [
    { name: 'sku', in: 'path', required: true, schema: { type: 'string', maxLength: 40 } },
    {
      name: 'warehouse',
      in: 'query',
      required: true,
      description: 'Warehouse code',
      schema: { type: 'string', description: 'Warehouse code' },
    },
    { name: 'unit', in: 'query', required: false, schema: { type: 'string', enum: ['each', 'case'] } },
  ])
  t.same(op.responses['200'].content['application/json'].schema, {
    type: 'object',
    properties: { qty: { type: 'integer' } },
  })
})
