// The SDK's in-memory test host: the reference semantics of the host-call protocol (queries,
// optimistic versions, capability checks) that plugin authors' unit tests run against.
import t from 'tap'
import { collection, createTestHost, definePlugin } from '../src/index.js'
import type { PluginContext, PluginManifest, Query } from '../src/index.js'

interface Part {
  sku: string
  qty: number
  tags?: string[]
  note?: string
}
type Ctx = PluginContext<{ parts: Part }>

const manifest: PluginManifest = {
  name: '@acme/parts',
  version: '1.0.0',
  engines: { trellis: '^0.1.0' },
  capabilities: [
    'data',
    'events:emit:parts.part.*',
    'http:fetch:api.example.com',
    'secrets',
    'plugins:call:@acme/pricing#quote',
  ],
  collections: {
    parts: {
      schema: {
        type: 'object',
        required: ['sku', 'qty'],
        properties: {
          sku: { type: 'string', minLength: 1 },
          qty: { type: 'integer', minimum: 0 },
          tags: { type: 'array', items: { type: 'string' } },
          note: { type: 'string' },
        },
      },
    },
  },
  events: {
    emits: {
      'parts.part.restocked': { schema: { type: 'object', required: ['at'], properties: { at: { type: 'integer' } } } },
    },
  },
  routes: [
    {
      method: 'POST',
      path: '/parts',
      request: { body: { type: 'object', required: ['sku'], properties: { sku: { type: 'string' } } } },
    },
  ],
}

const plugin = definePlugin({
  manifest,
  collections: { parts: collection<Part>() },
  routes: {
    'POST /parts': async (req: { body: Part }, ctx: Ctx) => ({
      status: 201,
      body: await ctx.data.parts.insert({ sku: req.body.sku, qty: 1 }),
    }),
  },
  actions: {
    emitBad: async (_: unknown, ctx: Ctx) => ctx.events.emit('parts.part.restocked', { at: 'noon' }),
    insertBad: async (_: unknown, ctx: Ctx) => ctx.data.parts.insert({ sku: '', qty: -1 }),
    patchBad: async (id: string, ctx: Ctx) => ctx.data.parts.update(id, { qty: 'many' as never }, 1),
    seed: async (input: Part[], ctx: Ctx) => {
      for (const p of input) await ctx.data.parts.insert(p)
      return null
    },
    find: async (q: Query<Part>, ctx: Ctx) => ctx.data.parts.find(q),
    bump: async (input: { id: string; version: number }, ctx: Ctx) =>
      ctx.data.parts.update(input.id, { qty: 99 }, input.version),
    emit: async (type: string, ctx: Ctx) => ctx.events.emit(type, { at: 1 }),
    fetch: async (url: string, ctx: Ctx) => (await ctx.http.fetch(url)).status,
    secret: async (name: string, ctx: Ctx) => ctx.secrets.get(name),
    quote: async (_: unknown, ctx: Ctx) => ctx.plugins.call('@acme/pricing', 'quote', { sku: 'A' }),
    tax: async (_: unknown, ctx: Ctx) => ctx.plugins.call('@acme/tax', 'rate', {}),
    mutate: async (_: unknown, ctx: Ctx) => {
      const p = await ctx.data.parts.insert({ sku: 'M', qty: 1 })
      p.qty = 1000 // a copy: the stored record does not change
      return (await ctx.data.parts.get(p.id))!.qty
    },
  },
})

const parts: Part[] = [
  { sku: 'A-1', qty: 5, tags: ['steel'] },
  { sku: 'A-2', qty: 15, tags: ['steel', 'm8'] },
  { sku: 'B-1', qty: 0, note: 'discontinued' },
  { sku: 'VIP-1', qty: 2 },
  { sku: 'C-1', qty: 30, tags: ['brass'] },
]

t.test('queries: operators, and/or, sort, limit and cursor', async (t) => {
  const host = createTestHost(plugin)
  await host.action('seed', parts)
  const skus = async (q: Query<Part>) => ((await host.action('find', q)) as { items: Part[] }).items.map((p) => p.sku)
  t.same(await skus({}), ['A-1', 'A-2', 'B-1', 'VIP-1', 'C-1'], 'default order is insertion (id) order')
  t.same(await skus({ where: { qty: 15 } }), ['A-2'], 'a bare value is eq')
  t.same(await skus({ where: { qty: { ne: 15 } } }), ['A-1', 'B-1', 'VIP-1', 'C-1'])
  t.same(await skus({ where: { sku: { in: ['B-1', 'C-1', 'nope'] } } }), ['B-1', 'C-1'])
  t.same(await skus({ where: { qty: { gt: 2, lte: 15 } } }), ['A-1', 'A-2'])
  t.same(await skus({ where: { qty: { lt: 5 }, sku: { gte: 'C' } } }), ['VIP-1'])
  t.same(await skus({ where: { sku: { prefix: 'A-' } } }), ['A-1', 'A-2'])
  t.same(await skus({ where: { tags: { contains: 'steel' } } }), ['A-1', 'A-2'], 'contains on an array is membership')
  t.same(await skus({ where: { note: { contains: 'contin' } } }), ['B-1'], 'contains on a string is a substring')
  t.same(
    await skus({ where: { note: { eq: null } } as never }),
    ['A-1', 'A-2', 'VIP-1', 'C-1'],
    'a missing field is null',
  )
  t.same(await skus({ where: { note: { gt: '' } } }), ['B-1'], 'ordering never matches a missing field')
  t.same(await skus({ where: { or: [{ sku: { prefix: 'VIP-' } }, { qty: { gte: 30 } }] } }), ['VIP-1', 'C-1'])
  t.same(
    await skus({
      where: { and: [{ qty: { gte: 5 } }, { tags: { contains: 'steel' } }], or: [{ sku: 'A-2' }, { sku: 'C-1' }] },
    }),
    ['A-2'],
  )
  t.same(await skus({ sort: [{ field: 'qty', direction: 'desc' }] }), ['C-1', 'A-2', 'A-1', 'VIP-1', 'B-1'])
  const pages: string[][] = []
  let cursor: string | undefined
  do {
    const page = (await host.action('find', { sort: [{ field: 'sku' }], limit: 2, ...(cursor ? { cursor } : {}) })) as {
      items: Part[]
      nextCursor: string | null
    }
    pages.push(page.items.map((p) => p.sku))
    cursor = page.nextCursor ?? undefined
  } while (cursor)
  t.same(pages, [['A-1', 'A-2'], ['B-1', 'C-1'], ['VIP-1']])
})

t.test('update is optimistic: the expected version must match', async (t) => {
  const host = createTestHost(plugin)
  await host.action('seed', [parts[0]])
  const [stored] = host.collections.get('parts')!.values()
  t.equal(stored!.version, 1)
  const updated = (await host.action('bump', { id: stored!.id, version: 1 })) as { qty: number; version: number }
  t.same([updated.qty, updated.version], [99, 2])
  await t.rejects(host.action('bump', { id: stored!.id, version: 1 }), { code: 'KRN_ERR_CONFLICT', status: 409 })
  await t.rejects(host.action('bump', { id: 'missing', version: 1 }), { code: 'KRN_ERR_NOT_FOUND' })
  t.equal(await host.action('mutate'), 1, 'records cross the boundary as copies')
})

t.test('capabilities are checked the way the kernel checks them', async (t) => {
  const host = createTestHost(plugin, {
    secrets: { apiKey: 'k-1' },
    plugins: { '@acme/pricing': { quote: (input) => ({ input, total: 3 }) } },
    fetch: (req) => ({ status: req.url.endsWith('/ok') ? 200 : 500, headers: {}, body: '' }),
  })
  t.match(await host.action('emit', 'parts.part.restocked'), { id: /^[0-9a-f-]{36}$/ })
  t.same(host.emitted, [{ type: 'parts.part.restocked', data: { at: 1 } }])
  await t.rejects(host.action('emit', 'orders.order.placed'), { code: 'KRN_ERR_CAPABILITY_DENIED' })
  await t.rejects(
    host.action('emit', 'parts.part.lost'),
    { code: 'KRN_ERR_VALIDATION_FAILED' },
    'allowed by the pattern but not declared in events.emits',
  )
  await t.rejects(
    host.action('emit', 'parts.part.restocked.late'),
    { code: 'KRN_ERR_CAPABILITY_DENIED' },
    '* is one segment',
  )
  t.equal(await host.action('fetch', 'https://api.example.com/ok'), 200)
  await t.rejects(host.action('fetch', 'https://api.example.com:8443/ok'), { code: 'KRN_ERR_CAPABILITY_DENIED' })
  await t.rejects(host.action('fetch', 'https://evil.example.net/'), { code: 'KRN_ERR_CAPABILITY_DENIED' })
  t.equal(await host.action('secret', 'apiKey'), 'k-1')
  t.equal(await host.action('secret', 'unset'), null)
  t.same(await host.action('quote'), { input: { sku: 'A' }, total: 3 })
  await t.rejects(host.action('tax'), { code: 'KRN_ERR_CAPABILITY_DENIED' })
  t.same(
    host.calls.map((c) => c.op),
    [
      'events.emit',
      'events.emit',
      'events.emit',
      'events.emit',
      'http.fetch',
      'http.fetch',
      'http.fetch',
      'secrets.get',
      'secrets.get',
      'plugins.call',
      'plugins.call',
    ],
    'every call is recorded, refused ones too',
  )

  const bare = createTestHost(plugin, { capabilities: [] })
  await t.rejects(bare.action('seed', parts), { code: 'KRN_ERR_CAPABILITY_DENIED' })
  await t.rejects(bare.action('secret', 'apiKey'), { code: 'KRN_ERR_CAPABILITY_DENIED' })
})

t.test('records, emitted events and route bodies are validated against the manifest schemas', async (t) => {
  const host = createTestHost(plugin)
  await t.rejects(host.action('insertBad'), {
    code: 'KRN_ERR_VALIDATION_FAILED',
    status: 400,
    details: { problems: [{ pointer: '/sku' }, { pointer: '/qty' }] },
  })
  await host.action('seed', [parts[0]])
  const [stored] = host.collections.get('parts')!.values()
  await t.rejects(host.action('patchBad', stored!.id), {
    code: 'KRN_ERR_VALIDATION_FAILED',
    details: { problems: [{ pointer: '/qty' }] },
  })
  t.equal(host.collections.get('parts')!.get(stored!.id)!.version, 1, 'nothing was written')
  await t.rejects(host.action('emitBad'), {
    code: 'KRN_ERR_VALIDATION_FAILED',
    details: { problems: [{ pointer: '/at' }] },
  })
  t.same(host.emitted, [])
  await t.rejects(host.route('POST /parts', { body: { qty: 1 } }), { code: 'KRN_ERR_VALIDATION_FAILED' })
  t.equal((await host.route('POST /parts', { body: { sku: 'N-1' } })).status, 201)
})

t.test('host calls that break the protocol are refused before anything runs', async (t) => {
  const host = createTestHost(plugin)
  await t.rejects(host.call('data.drop', { collection: 'parts' }), {
    code: 'KRN_ERR_VALIDATION_FAILED',
    message: /unknown host operation/,
  })
  await t.rejects(host.call('data.update', { collection: 'parts', id: 'x', patch: {}, expectedVersion: '1' }), {
    code: 'KRN_ERR_VALIDATION_FAILED',
    details: { problems: [{ pointer: '/expectedVersion' }] },
  })
  await t.rejects(host.call('data.find', { collection: 'parts', query: { where: { qty: { between: [1, 2] } } } }), {
    code: 'KRN_ERR_VALIDATION_FAILED',
  })
  await t.rejects(host.call('http.fetch', { url: 'file:///etc/passwd', method: 'GET', headers: {}, body: null }), {
    code: 'KRN_ERR_VALIDATION_FAILED',
    details: { problems: [{ pointer: '/url' }] },
  })
  await t.rejects(host.call('events.emit', { type: 'parts.part.restocked', data: { at: 1 }, extra: true }), {
    code: 'KRN_ERR_VALIDATION_FAILED',
  })
  t.same(host.emitted, [])
  t.equal(host.collections.get('parts')!.size, 0)
})
