// Manifest validation and the capability lint, as a plugin author (and the marketplace) sees them.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Ajv2020 } from 'ajv/dist/2020.js'
import {
  hostAllowed,
  lintPlugin,
  manifestSchema,
  matchesEventPattern,
  parseCapability,
  SIZE_LIMITS,
  validateManifest,
} from '../src/index.js'
import type { ManifestIssue, PluginManifest } from '../src/index.js'

const good = JSON.parse(
  readFileSync(fileURLToPath(new URL('./fixtures/orders-plugin/trellis.plugin.json', import.meta.url)), 'utf8'),
) as PluginManifest
const clone = (): any => structuredClone(good)
const errorsOf = (m: unknown) => {
  const v = validateManifest(m)
  return v.ok ? [] : v.errors.map((e) => [e.pointer, e.rule])
}
const at = (issues: ManifestIssue[]) => issues.map((i) => [i.pointer, i.rule])

t.test('a complete manifest validates, and a minimal one too', async (t) => {
  const v = validateManifest(good)
  t.ok(v.ok)
  t.same(v.errors, [])
  t.ok(validateManifest({ name: '@acme/min', version: '0.0.1', engines: { trellis: '>=0.1 <2' }, capabilities: [] }).ok)
})

t.test('the published schema file is the exported schema, and is itself valid JSON Schema', async (t) => {
  const file = JSON.parse(
    readFileSync(fileURLToPath(new URL('../schema/manifest.schema.json', import.meta.url)), 'utf8'),
  )
  t.same(manifestSchema, file)
  t.doesNotThrow(() => new Ajv2020({ strict: true, allowUnionTypes: true }).compile(file))
})

t.test('bad manifests fail with a JSON pointer to the field and a reason', async (t) => {
  const cases: Array<[string, (m: any) => void, string, string, RegExp?]> = [
    ['name without scope', (m) => (m.name = 'orders'), '/name', 'schema', /@scope\/name/],
    ['name with capitals', (m) => (m.name = '@Acme/Orders'), '/name', 'schema'],
    ['missing version', (m) => delete m.version, '/version', 'schema', /required/],
    ['version not semver', (m) => (m.version = '1.2'), '/version', 'semver', /semantic version/],
    ['engine range invalid', (m) => (m.engines.trellis = 'latest!'), '/engines/trellis', 'semver'],
    ['engines missing trellis', (m) => (m.engines = {}), '/engines/trellis', 'schema', /required/],
    ['unknown top-level field', (m) => (m.permisions = []), '/permisions', 'schema', /not a known field/],
    [
      'unknown capability',
      (m) => m.capabilities.push('filesystem'),
      '/capabilities/7',
      'schema',
      /is not a capability/,
    ],
    [
      'bad event pattern',
      (m) => m.capabilities.push('events:emit:Orders..x'),
      '/capabilities/7',
      'capability',
      /event pattern/,
    ],
    [
      'bad http host',
      (m) => m.capabilities.push('http:fetch:https://x.com/path'),
      '/capabilities/7',
      'capability',
      /not a host/,
    ],
    ['bad plugins:call', (m) => m.capabilities.push('plugins:call:@acme/pricing'), '/capabilities/7', 'capability'],
    ['duplicate capability', (m) => m.capabilities.push('data'), '/capabilities', 'schema'],
    ['route method', (m) => (m.routes[0].method = 'FETCH'), '/routes/0/method', 'schema'],
    ['route path', (m) => (m.routes[1].path = 'orders/:id'), '/routes/1/path', 'schema', /\/orders\/:id/],
    [
      'duplicate route',
      (m) => m.routes.push({ method: 'GET', path: '/orders/:orderId' }),
      '/routes/8',
      'route-duplicate',
    ],
    [
      'GET with a body schema',
      (m) => (m.routes[1].request = { body: { type: 'object' } }),
      '/routes/1/request/body',
      'route-body',
    ],
    [
      'response status key',
      (m) => (m.routes[0].response = { ok: { type: 'object' } }),
      '/routes/0/response/ok',
      'schema',
    ],
    [
      'route schema not JSON Schema',
      (m) => (m.routes[0].request = { body: { type: 'banana' } }),
      '/routes/0/request/body',
      'json-schema',
    ],
    [
      'collection schema invalid',
      (m) => (m.collections.orders.schema.properties.qty = { type: 'int' }),
      '/collections/orders/schema',
      'json-schema',
    ],
    [
      'collection schema not an object',
      (m) => (m.collections.orders.schema = { type: 'array' }),
      '/collections/orders/schema/type',
      'json-schema',
    ],
    [
      'collection redefines a kernel field',
      (m) => (m.collections.orders.schema.properties.version = { type: 'string' }),
      '/collections/orders/schema/properties/version',
      'json-schema',
    ],
    [
      'index on an unknown field',
      (m) => (m.collections.orders.indexes[1].fields = ['skew']),
      '/collections/orders/indexes/1/fields/0',
      'index',
    ],
    [
      'collection name',
      (m) => (m.collections['bad name'] = { schema: { type: 'object' } }),
      '/collections/bad name',
      'schema',
    ],
    ['emitted event name', (m) => (m.events.emits.OrderPlaced = { schema: {} }), '/events/emits/OrderPlaced', 'schema'],
    [
      'subscribed event name',
      (m) => m.events.subscribes.push('stock'),
      '/events/subscribes/1',
      'schema',
      /orders\.order\.placed/,
    ],
    [
      'emitted event schema invalid',
      (m) => (m.events.emits['orders.order.placed'].schema = { minimum: 'one' }),
      '/events/emits/orders.order.placed/schema',
      'json-schema',
    ],
    [
      'secret setting not a string',
      (m) => (m.settings.properties.webhookToken.type = 'number'),
      '/settings/properties/webhookToken/type',
      'secret',
    ],
    ['settings not an object schema', (m) => (m.settings = { type: 'string' }), '/settings/type', 'schema'],
    ['permission name', (m) => (m.permissions[0].name = 'Orders Write'), '/permissions/0/name', 'schema', /dotted/],
    [
      'permission without description',
      (m) => delete m.permissions[0].description,
      '/permissions/0/description',
      'schema',
    ],
    [
      'dependency range',
      (m) => (m.dependencies['@acme/pricing'] = 'one point oh'),
      '/dependencies/@acme~1pricing',
      'semver',
    ],
    [
      'dependency on itself',
      (m) => (m.dependencies['@acme/orders'] = '^1.0.0'),
      '/dependencies/@acme~1orders',
      'dependency',
    ],
    ['workflow without steps', (m) => (m.workflows.orderException = {}), '/workflows/orderException/steps', 'schema'],
    [
      'action input not a schema',
      (m) => (m.actions.cancelOrder.input = 'object'),
      '/actions/cancelOrder/input',
      'schema',
    ],
  ]
  for (const [what, mutate, pointer, rule, message] of cases) {
    const m = clone()
    mutate(m)
    const v = validateManifest(m)
    t.notOk(v.ok, `${what}: invalid`)
    const hit = v.errors.find((e) => e.pointer === pointer && e.rule === rule)
    t.ok(hit, `${what}: an error at ${pointer} (${rule}); got ${JSON.stringify(errorsOf(m))}`)
    if (hit && message) t.match(hit.message, message, `${what}: reason`)
  }
})

t.test('non-objects and oversized manifests are refused', async (t) => {
  for (const v of [null, [], 'name', 42]) t.same(errorsOf(v), [['', 'schema']])
  const big = clone()
  big.description = 'x'.repeat(400)
  big.permissions = Array.from({ length: 200 }, (_, i) => ({ name: `orders.p${i}`, description: 'y'.repeat(500) }))
  big.collections.orders.schema.description = 'z'.repeat(SIZE_LIMITS.manifestBytes)
  t.ok(errorsOf(big).some(([p, r]) => p === '' && r === 'size-limit'))
})

t.test('the lint: code and manifest agree', async (t) => {
  const entries = {
    route: [
      'POST /orders',
      'GET /orders/:id',
      'GET /orders',
      'PATCH /orders/:id',
      'DELETE /orders/:id',
      'POST /orders/:id/notify',
      'POST /checks/qty',
      'GET /whoami',
    ],
    event: ['inventory.stock.depleted'],
    action: ['cancelOrder'],
    workflowStep: ['orderException.review'],
  }
  t.same(lintPlugin({ manifest: good, entries }), { errors: [], warnings: [] })
  const drift = lintPlugin({
    manifest: good,
    entries: {
      route: [...entries.route.slice(1), 'GET /secret-admin'],
      event: ['inventory.stock.restocked'],
      action: ['refund'],
      workflowStep: [],
    },
  })
  t.same(at(drift.errors), [
    ['/routes', 'route-undeclared'],
    ['/routes/0', 'route-unhandled'],
    ['/events/subscribes', 'event-undeclared'],
    ['/events/subscribes/0', 'event-unhandled'],
    ['/actions', 'action-undeclared'],
    ['/actions/cancelOrder', 'action-unhandled'],
    ['/workflows/orderException/steps/0', 'workflow-step-unhandled'],
  ])
  t.match(drift.errors[0]!.message, /GET \/secret-admin/)
})

t.test('the lint: capabilities needed, usable and bounded', async (t) => {
  const m = clone()
  m.capabilities = [
    'events:emit:orders.order.placed',
    'events:subscribe:billing.**',
    'plugins:call:@acme/tax#rate',
    'http:fetch:*',
    'http:fetch:*.example.com',
    'secrets',
  ]
  delete m.settings
  delete m.workflows
  m.events.subscribes = ['inventory.stock.depleted']
  m.routes[0].permission = 'orders.approve'
  const { errors, warnings } = lintPlugin({ manifest: m })
  t.same(at(errors), [
    ['/capabilities', 'capability-missing'], // collections without data
    ['/events/subscribes/0', 'capability-missing'],
    ['/events/emits/orders.order.held', 'capability-missing'],
    ['/capabilities/2', 'capability-unusable'], // @acme/tax is not a dependency
    ['/capabilities/3', 'http-fetch-wildcard'],
  ])
  t.same(at(warnings), [
    ['/capabilities/1', 'capability-unused'], // billing.** matches no subscription
    ['/capabilities/5', 'capability-unused'], // secrets without secret settings
    ['/capabilities/4', 'http-fetch-wildcard'],
    ['/routes/0/permission', 'permission-undeclared'],
  ])
  const unused = clone()
  unused.capabilities.push('events:emit:orders.invoice.*')
  delete unused.collections
  t.same(at(lintPlugin({ manifest: unused }).warnings), [
    ['/capabilities/0', 'capability-unused'],
    ['/capabilities/7', 'capability-unused'],
  ])
  const named = clone()
  named.events.emits['billing.invoice.sent'] = { schema: {} }
  named.capabilities.push('events:emit:billing.**')
  t.same(at(lintPlugin({ manifest: named }).warnings), [['/events/emits/billing.invoice.sent', 'event-name']])
  const secretNoCap = clone()
  secretNoCap.capabilities = secretNoCap.capabilities.filter((c: string) => c !== 'secrets')
  t.same(at(lintPlugin({ manifest: secretNoCap }).errors), [
    ['/settings/properties/webhookToken', 'capability-missing'],
  ])
})

t.test('the lint: size limits', async (t) => {
  const { errors } = lintPlugin({
    manifest: good,
    sizes: { bundleBytes: SIZE_LIMITS.bundleBytes + 1, sourceMapBytes: 10, packageBytes: SIZE_LIMITS.packageBytes + 1 },
  })
  t.same(at(errors), [
    ['', 'size-limit'],
    ['', 'size-limit'],
  ])
  t.match(errors[0]!.message, /bundle/)
})

t.test('capability parsing and matching shared with the kernel', async (t) => {
  t.same(parseCapability('plugins:call:@acme/pricing#quote'), {
    kind: 'plugins:call',
    plugin: '@acme/pricing',
    action: 'quote',
  })
  t.same(parseCapability('http:fetch:api.stripe.com,hooks.slack.com:8443'), {
    kind: 'http:fetch',
    hosts: ['api.stripe.com', 'hooks.slack.com:8443'],
  })
  t.ok('error' in parseCapability('http:fetch:10.0.0.1/admin'))
  t.ok(matchesEventPattern('orders.order.placed', 'orders.order.placed'))
  t.ok(matchesEventPattern('orders.*.placed', 'orders.order.placed'))
  t.ok(matchesEventPattern('orders.**', 'orders.order.placed'))
  t.notOk(matchesEventPattern('orders.**', 'orders'))
  t.notOk(matchesEventPattern('orders.*', 'orders.order.placed'))
  t.notOk(matchesEventPattern('orders.order.placed', 'orders.order.placed.late'))
  t.ok(hostAllowed(['*.example.com'], 'hooks.example.com'))
  t.notOk(hostAllowed(['*.example.com'], 'example.com'))
  t.notOk(hostAllowed(['*.example.com'], 'evil-example.com'))
  t.ok(hostAllowed(['api.example.com:8443'], 'api.example.com:8443'))
  t.notOk(hostAllowed(['api.example.com:8443'], 'api.example.com'))
  t.notOk(hostAllowed(['api.example.com'], 'api.example.com:8080'), 'no port in the entry: default port only')
  t.ok(hostAllowed(['api.example.com'], new URL('https://API.example.com:443/x').host))
  t.ok(hostAllowed(['*'], 'anything.example:1234'))
})
