// The SDK runtime as a bundle runs it: the fixture plugin is built with the SDK's build, the
// bundle is evaluated the way the sandbox evaluates it (module/exports, no Node globals), and
// its `invoke` is driven with a fake host that records every host call.
import t from 'tap'
import { runInNewContext } from 'node:vm'
import { fileURLToPath } from 'node:url'
import { buildPlugin } from '../src/build.js'
import { TrellisError, createBundle, definePlugin, SDK, validateHostCall } from '../src/index.js'
import type { BundleExports, PluginInvocationContext, SandboxHost } from '../src/index.js'

const dir = fileURLToPath(new URL('./fixtures/orders-plugin', import.meta.url))
const built = await buildPlugin({ dir, write: false })
const factory = runInNewContext(`(function (module, exports) {\n${built.code}\n})`, {}) as (
  m: unknown,
  e: unknown,
) => void
const mod = { exports: {} as BundleExports }
factory(mod, mod.exports)
const bundle = mod.exports

const context = (extra: Partial<PluginInvocationContext> = {}): PluginInvocationContext => ({
  invocationId: 'inv-1',
  tenantId: 'tenant-1',
  installationId: 'inst-1',
  caller: { kind: 'user', id: 'user-1', permissions: ['orders.write'] },
  capabilities: ['data'],
  settings: { currency: 'EUR' },
  ...extra,
})

// Every host call any test below makes, checked against the protocol's schemas at the end.
const everyCall: Array<[string, unknown]> = []

function fakeHost(answers: Record<string, (args: any) => unknown> = {}) {
  const calls: Array<[string, unknown]> = []
  const logs: unknown[][] = []
  const host: SandboxHost = {
    call: async (op, args) => {
      calls.push([op, JSON.parse(JSON.stringify(args))])
      everyCall.push([op, JSON.parse(JSON.stringify(args))])
      const answer = answers[op]
      if (!answer) throw new Error(`unexpected host call ${op}`)
      return answer(args)
    },
    log: (...line) => void logs.push(line),
  }
  return { host, calls, logs }
}

const route = (name: string, input: Record<string, unknown>, host: SandboxHost, ctx = context()) =>
  bundle.invoke(
    { kind: 'route', name },
    { method: name.split(' ')[0], path: '/', params: {}, query: {}, headers: {}, body: null, ...input },
    ctx,
    host,
  )

t.test('the bundle declares every handler of the definition, per kind', async (t) => {
  t.same(bundle.entries, {
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
  })
  t.same(built.entries, bundle.entries)
  t.match(built.sha256, /^[0-9a-f]{64}$/)
})

t.test('a route turns ctx calls into host calls in order and returns { status, headers, body }', async (t) => {
  const stored = {
    id: 'o-1',
    sku: 'A-1',
    qty: 2,
    total: 20,
    status: 'placed',
    version: 1,
    createdAt: 't',
    updatedAt: 't',
  }
  const { host, calls, logs } = fakeHost({
    'plugins.call': () => ({ total: 20 }),
    'data.insert': () => stored,
    'events.emit': () => ({ id: 'evt-1' }),
  })
  const out = await route('POST /orders', { body: { sku: 'A-1', qty: 2 } }, host)
  t.same(calls, [
    ['plugins.call', { plugin: '@acme/pricing', action: 'quote', input: { lines: [{ sku: 'A-1', qty: 2 }] } }],
    ['data.insert', { collection: 'orders', record: { sku: 'A-1', qty: 2, total: 20, status: 'placed' } }],
    ['events.emit', { type: 'orders.order.placed', data: { orderId: 'o-1', total: 20 }, subject: 'o-1' }],
  ])
  t.same(out, { status: 201, body: stored, headers: { location: '/orders/o-1' } })
  t.same(logs, [['info', 'order placed', { orderId: 'o-1', currency: 'EUR' }]])
})

t.test('data.get, data.delete and a missing body', async (t) => {
  const { host, calls } = fakeHost({ 'data.get': () => null, 'data.delete': () => true })
  t.same(await route('GET /orders/:id', { params: { id: 'nope' } }, host), {
    status: 404,
    body: { error: 'not found' },
  })
  t.same(
    await route('DELETE /orders/:id', { params: { id: 'o-9' } }, host),
    { status: 204, body: null },
    'an omitted body arrives as null',
  )
  t.same(calls, [
    ['data.get', { collection: 'orders', id: 'nope' }],
    ['data.delete', { collection: 'orders', id: 'o-9' }],
  ])
})

t.test('data.find sends the query as written; update sends the expected version', async (t) => {
  const { host, calls } = fakeHost({ 'data.find': () => ({ items: [], nextCursor: null }) })
  t.same(await route('GET /orders', { query: { status: 'held', cursor: 'c2' } }, host), {
    status: 200,
    body: { items: [], nextCursor: null },
  })
  t.same(calls, [
    [
      'data.find',
      {
        collection: 'orders',
        query: {
          where: { status: 'held', or: [{ qty: { gte: 10 } }, { sku: { prefix: 'VIP-' } }] },
          sort: [{ field: 'createdAt', direction: 'desc' }],
          limit: 2,
          cursor: 'c2',
        },
      },
    ],
  ])
  const conflict = fakeHost({
    'data.update': () => Promise.reject(new TrellisError('KRN_ERR_CONFLICT', 409, 'Conflict', 'version mismatch')),
  })
  t.same(await route('PATCH /orders/:id', { params: { id: 'o-1' }, body: { qty: 5, version: 3 } }, conflict.host), {
    status: 409,
    body: { error: 'stale version' },
  })
  t.same(conflict.calls, [['data.update', { collection: 'orders', id: 'o-1', patch: { qty: 5 }, expectedVersion: 3 }]])
})

t.test('http.fetch and secrets.get', async (t) => {
  const { host, calls } = fakeHost({
    'secrets.get': () => 's3cret',
    'http.fetch': () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"received":true}' }),
  })
  t.same(await route('POST /orders/:id/notify', { params: { id: 'o-1' } }, host), {
    status: 202,
    body: { upstream: 200, reply: { received: true } },
  })
  t.same(calls, [
    ['secrets.get', { name: 'webhookToken' }],
    [
      'http.fetch',
      {
        url: 'https://hooks.example.com/orders',
        method: 'POST',
        headers: { authorization: 'Bearer s3cret', 'content-type': 'application/json' },
        body: '{"orderId":"o-1"}',
      },
    ],
  ])
})

t.test('ctx carries tenant, caller, settings and capabilities from the invocation context', async (t) => {
  const { host, calls } = fakeHost()
  const out = (await route('GET /whoami', {}, host, context({ capabilities: ['data', 'secrets'] }))) as {
    body: Record<string, unknown>
  }
  t.same(out.body, {
    tenant: { id: 'tenant-1' },
    caller: { kind: 'user', id: 'user-1', permissions: ['orders.write'] },
    settings: { currency: 'EUR' },
    installationId: 'inst-1',
    invocationId: 'inv-1',
    capabilities: ['data', 'secrets'],
  })
  t.same(calls, [])
})

t.test('event, action and workflow-step entries', async (t) => {
  const placed = { id: 'o-1', sku: 'A-1', qty: 2, status: 'placed', version: 4, createdAt: 't', updatedAt: 't' }
  const { host, calls } = fakeHost({
    'data.find': () => ({ items: [placed], nextCursor: null }),
    'data.update': (a) => ({ ...placed, ...a.patch, version: 5 }),
    'events.emit': () => ({ id: 'e' }),
    'data.get': () => placed,
  })
  const event = {
    id: 'evt-9',
    tenantId: 'tenant-1',
    type: 'inventory.stock.depleted',
    source: '@acme/inventory',
    subject: 'A-1',
    time: 't',
    data: { sku: 'A-1' },
  }
  t.equal(
    await bundle.invoke(
      { kind: 'event', name: 'inventory.stock.depleted' },
      event,
      context({ caller: { kind: 'event', id: 'evt-9', permissions: [] } }),
      host,
    ),
    null,
  )
  t.same(
    calls.map(([op]) => op),
    ['data.find', 'data.update', 'events.emit'],
  )
  t.same(calls[1], ['data.update', { collection: 'orders', id: 'o-1', patch: { status: 'held' }, expectedVersion: 4 }])
  t.same(await bundle.invoke({ kind: 'action', name: 'cancelOrder' }, { orderId: 'o-1' }, context(), host), {
    cancelled: true,
  })
  t.same(
    await bundle.invoke({ kind: 'workflowStep', name: 'orderException.review' }, { orderId: 'o-1' }, context(), host),
    { decision: 'approve', orderId: 'o-1' },
  )
})

t.test("a handler's error keeps its code; unknown entries and bad responses fail with SDK codes", async (t) => {
  const { host } = fakeHost()
  await t.rejects(route('POST /checks/qty', { body: { qty: 0 } }, host), {
    code: 'ORD_ERR_OUT_OF_RANGE',
    status: 422,
    message: 'quantity must be positive, got 0',
  })
  await t.rejects(bundle.invoke({ kind: 'route', name: 'GET /nope' }, {}, context(), host), {
    code: SDK.UNKNOWN_ENTRY.code,
  })
  await t.rejects(bundle.invoke({ kind: 'workflowStep', name: 'orderException' }, {}, context(), host), {
    code: SDK.UNKNOWN_ENTRY.code,
  })
  const bad = createBundle(
    definePlugin({
      manifest: { name: '@acme/bad', version: '1.0.0', engines: { trellis: '*' }, capabilities: [] },
      routes: {
        'GET /a': async () => ({ body: 'no status' }) as never,
        'GET /b': async () => ({ status: 200, headers: { n: 1 } }) as never,
      },
    }),
  )
  await t.rejects(bad.invoke({ kind: 'route', name: 'GET /a' }, {}, context(), host), {
    code: SDK.INVALID_RESPONSE.code,
  })
  await t.rejects(bad.invoke({ kind: 'route', name: 'GET /b' }, {}, context(), host), {
    code: SDK.INVALID_RESPONSE.code,
  })
})

t.test('an undeclared collection fails with SDK_ERR_UNKNOWN_COLLECTION', async (t) => {
  const p = createBundle(
    definePlugin({
      manifest: {
        name: '@acme/typo',
        version: '1.0.0',
        engines: { trellis: '*' },
        capabilities: ['data'],
        collections: { orders: { schema: { type: 'object' } } },
      },
      routes: {
        'GET /x': async (_req, ctx) => ({ status: 200, body: await (ctx.data as Record<string, any>).ordrs.get('1') }),
      },
    }),
  )
  const { host, calls } = fakeHost()
  await t.rejects(p.invoke({ kind: 'route', name: 'GET /x' }, {}, context(), host), {
    code: SDK.UNKNOWN_COLLECTION.code,
    message: 'the plugin declares no collection "ordrs"',
  })
  t.same(calls, [])
})

t.test('queries are checked before they leave the isolate', async (t) => {
  const seen: unknown[] = []
  const p = createBundle(
    definePlugin({
      manifest: {
        name: '@acme/q',
        version: '1.0.0',
        engines: { trellis: '*' },
        capabilities: ['data'],
        collections: { things: { schema: { type: 'object' } } },
      },
      routes: {
        'POST /q': async (req, ctx) => ({ status: 200, body: await ctx.data.things!.find(req.body as never) }),
      },
    }),
  )
  const host: SandboxHost = {
    call: async (op, args) => (seen.push([op, args]), { items: [], nextCursor: null }),
    log: () => {},
  }
  const bad = [
    [{ where: { qty: { between: [1, 2] } } }, '/where/qty/between'],
    [{ where: { or: [] } }, '/where/or'],
    [{ limit: 0 }, '/limit'],
    [{ limit: 5000 }, '/limit'],
    [{ sort: [{ field: 'qty', direction: 'up' }] }, '/sort/0/direction'],
    [{ select: ['a'] }, '/select'],
  ] as const
  for (const [query, path] of bad) {
    await t.rejects(
      p.invoke({ kind: 'route', name: 'POST /q' }, { body: query }, context(), host),
      { code: SDK.INVALID_QUERY.code, details: { path } },
      path,
    )
  }
  t.same(seen, [], 'no invalid query reached the host')
  await p.invoke(
    { kind: 'route', name: 'POST /q' },
    { body: { where: { and: [{ tags: { contains: 'x' } }, { n: { in: [1, 2] } }, { n: { ne: 3, lt: 9 } }] } } },
    context(),
    host,
  )
  t.equal(seen.length, 1)
})

t.test('definePlugin refuses malformed keys with SDK_ERR_INVALID_DEFINITION', async (t) => {
  const manifest = { name: '@acme/x', version: '1.0.0', engines: { trellis: '*' }, capabilities: [] }
  const h = async () => ({ status: 200 })
  for (const def of [
    { manifest, routes: { '/orders': h } },
    { manifest, routes: { 'FETCH /orders': h } },
    { manifest, routes: { 'GET orders': h } },
    { manifest, routes: { 'GET /orders': 'not a function' } },
    { manifest, events: { 'orders.placed': h } },
    { manifest, actions: { 'cancel order': h } },
    { manifest, workflows: { wf: { steps: { 'a.b': h } } } },
    { manifest: { name: '@acme/x' } },
  ]) {
    t.throws(() => definePlugin(def as never), { code: SDK.INVALID_DEFINITION.code }, JSON.stringify(Object.keys(def)))
  }
})

t.test('every host call the runtime made matches the protocol schemas', async (t) => {
  t.ok(everyCall.length >= 12, `${everyCall.length} calls`)
  t.same(
    new Set(everyCall.map(([op]) => op)),
    new Set([
      'plugins.call',
      'data.insert',
      'events.emit',
      'data.get',
      'data.delete',
      'data.find',
      'data.update',
      'secrets.get',
      'http.fetch',
    ]),
  )
  for (const [op, args] of everyCall) t.same(validateHostCall(op, args), [], op)
})
