// A bundle built by `trellis-plugin build` runs in the real @trellis/sandbox: it loads with the
// entries its definition declares, its ctx calls reach the kernel's host-call handler as the
// documented protocol, and its errors come back with stacks in the plugin's own TypeScript.
import t from 'tap'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { TrellisError, createTestHost, validateHostCall } from '@trellis/plugin-sdk'
import type { HostOps } from '@trellis/plugin-sdk'
import { SBX, Sandbox } from '../sandbox/src/index.js'
import type { HostCallHandler, InvocationContext, InvocationError } from '../sandbox/src/index.js'
import { ordersPlugin } from '../plugin-sdk/test/fixtures/orders-plugin/src/index.js'

const fixture = fileURLToPath(new URL('../plugin-sdk/test/fixtures/orders-plugin', import.meta.url))
const bin = fileURLToPath(new URL('../plugin-sdk/bin/trellis-plugin.js', import.meta.url))
const dir = await mkdtemp(join(tmpdir(), 'trellis-sdk-sandbox-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
await cp(fixture, dir, { recursive: true })
const built = await new Promise<string>((resolve, reject) =>
  execFile(process.execPath, [bin, 'build', '--json'], { cwd: dir }, (err, stdout, stderr) =>
    err ? reject(new Error(stderr || String(err))) : resolve(stdout),
  ),
)
const code = await readFile(join(dir, 'dist', 'plugin.js'), 'utf8')
const sourceMap = await readFile(join(dir, 'dist', 'plugin.js.map'), 'utf8')
const source = await readFile(join(dir, 'src', 'index.ts'), 'utf8')
const bundle = {
  id: '@acme/orders',
  version: '1.2.0',
  code,
  sourceMap,
  sha256: createHash('sha256').update(code).digest('hex'),
}

const sandbox = await Sandbox.create({ workers: 1 })
t.teardown(() => sandbox.close())

let seq = 0
const context = (extra: Partial<InvocationContext> = {}): InvocationContext => ({
  invocationId: `inv-${++seq}`,
  tenantId: 'tenant-a',
  installationId: 'inst-a',
  caller: { kind: 'user', id: 'user-1', permissions: ['orders.write'] },
  capabilities: ['data', 'events:emit:orders.order.*', 'plugins:call:@acme/pricing#quote'],
  settings: { currency: 'EUR' },
  ...extra,
})

async function rejection(p: Promise<unknown>): Promise<InvocationError> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`)
    },
    (e) => e as InvocationError,
  )
}

t.test('the CLI reports what the sandbox loads', async (t) => {
  const { entries } = await sandbox.load(bundle)
  const expected = {
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
  t.same(entries, expected)
  t.same(JSON.parse(built).entries, expected)
  t.equal(JSON.parse(built).sha256, bundle.sha256)
})

t.test('a route invocation makes the protocol host calls and returns the route output', async (t) => {
  const calls: Array<[string, unknown]> = []
  const onHostCall: HostCallHandler = async (op, args) => {
    calls.push([op, args])
    if (op === 'plugins.call') return { total: 42.5 } satisfies HostOps['plugins.call']['result']
    if (op === 'data.insert') {
      const { record } = args as HostOps['data.insert']['args']
      return {
        ...record,
        id: 'ord-1',
        version: 1,
        createdAt: '2026-11-28T00:00:00.000Z',
        updatedAt: '2026-11-28T00:00:00.000Z',
      }
    }
    if (op === 'events.emit') return { id: 'evt-1' }
    throw new Error(`unexpected ${op}`)
  }
  const res = await sandbox.invoke({
    bundle,
    entry: { kind: 'route', name: 'POST /orders' },
    input: {
      method: 'POST',
      path: '/orders',
      params: {},
      query: {},
      headers: { 'content-type': 'application/json' },
      body: { sku: 'BOLT-8', qty: 5 },
    },
    context: context(),
    onHostCall,
  })
  t.same(calls, [
    ['plugins.call', { plugin: '@acme/pricing', action: 'quote', input: { lines: [{ sku: 'BOLT-8', qty: 5 }] } }],
    ['data.insert', { collection: 'orders', record: { sku: 'BOLT-8', qty: 5, total: 42.5, status: 'placed' } }],
    ['events.emit', { type: 'orders.order.placed', data: { orderId: 'ord-1', total: 42.5 }, subject: 'ord-1' }],
  ])
  t.same(res.output, {
    status: 201,
    body: {
      sku: 'BOLT-8',
      qty: 5,
      total: 42.5,
      status: 'placed',
      id: 'ord-1',
      version: 1,
      createdAt: '2026-11-28T00:00:00.000Z',
      updatedAt: '2026-11-28T00:00:00.000Z',
    },
    headers: { location: '/orders/ord-1' },
  })
  for (const [op, args] of calls) t.same(validateHostCall(op, args), [], `${op} args match the protocol schema`)
  t.equal(res.metrics.hostCalls, 3)
  t.same(
    res.logs.map((l) => [l.level, l.message, l.fields]),
    [['info', 'order placed', { orderId: 'ord-1', currency: 'EUR' }]],
  )
})

t.test('ctx reflects the invocation context', async (t) => {
  const res = await sandbox.invoke({
    bundle,
    entry: { kind: 'route', name: 'GET /whoami' },
    input: { method: 'GET', path: '/whoami', params: {}, query: {}, headers: {}, body: null },
    context: context({ invocationId: 'inv-who' }),
    onHostCall: async () => null,
  })
  t.same((res.output as { body: unknown }).body, {
    tenant: { id: 'tenant-a' },
    caller: { kind: 'user', id: 'user-1', permissions: ['orders.write'] },
    settings: { currency: 'EUR' },
    installationId: 'inst-a',
    invocationId: 'inv-who',
    capabilities: ['data', 'events:emit:orders.order.*', 'plugins:call:@acme/pricing#quote'],
  })
})

t.test("a kernel denial reaches the caller with the kernel's code", async (t) => {
  const err = await rejection(
    sandbox.invoke({
      bundle,
      entry: { kind: 'action', name: 'cancelOrder' },
      input: { orderId: 'ord-1' },
      context: context({ capabilities: [] }),
      onHostCall: async () => {
        throw new TrellisError(
          'KRN_ERR_CAPABILITY_DENIED',
          403,
          'Capability denied',
          'the installation was not granted "data"',
        )
      },
    }),
  )
  t.equal(err.code, 'KRN_ERR_CAPABILITY_DENIED')
  t.equal(err.status, 403)
})

t.test("the plugin's thrown error is SBX_ERR_PLUGIN_ERROR with a stack in the plugin's .ts source", async (t) => {
  const err = await rejection(
    sandbox.invoke({
      bundle,
      entry: { kind: 'route', name: 'POST /checks/qty' },
      input: { method: 'POST', path: '/checks/qty', params: {}, query: {}, headers: {}, body: { qty: 0 } },
      context: context(),
      onHostCall: async () => null,
    }),
  )
  t.equal(err.code, SBX.PLUGIN_ERROR.code)
  t.equal(err.message, 'quantity must be positive, got 0')
  t.match(err.details, { pluginCode: 'ORD_ERR_OUT_OF_RANGE', pluginStatus: 422 })
  const lines = source.split('\n')
  const throwLine = lines.findIndex((l) => l.includes('throw ORD.OUT_OF_RANGE')) + 1
  const callLine =
    lines.findIndex(
      (l, i) => i > 0 && lines[i - 1]!.includes('async function checkQty(') && l.includes('checkQuantity('),
    ) + 1
  t.ok(throwLine > 0 && callLine > 0)
  t.match(err.stack, new RegExp(`at checkQuantity \\(\\.\\./src/index\\.ts:${throwLine}:\\d+\\)`))
  t.match(err.stack, new RegExp(`at checkQty \\(\\.\\./src/index\\.ts:${callLine}:\\d+\\)`))
  t.notMatch(
    err.stack,
    /\/tmp\/|\/work\/|node:internal|sandbox\/src|bootstrap/,
    'no host frames or build-machine paths',
  )
})

t.test(
  'the SDK test host serves as the kernel for the sandboxed bundle, with the same results as in-process',
  async (t) => {
    const host = createTestHost(ordersPlugin, {
      settings: { currency: 'EUR' },
      plugins: { '@acme/pricing': { quote: () => ({ total: 7 }) } },
    })
    const inSandbox = async (kind: 'route' | 'event', name: string, input: unknown) =>
      (
        await sandbox.invoke({
          bundle,
          entry: { kind, name },
          input,
          context: context({ capabilities: [...ordersPlugin.manifest.capabilities] }),
          onHostCall: (op, args) => host.call(op, args),
        })
      ).output
    const req = (method: string, path: string, extra: Record<string, unknown> = {}) => ({
      method,
      path,
      params: {},
      query: {},
      headers: {},
      body: null,
      ...extra,
    })

    const placed = (await inSandbox(
      'route',
      'POST /orders',
      req('POST', '/orders', { body: { sku: 'NUT-4', qty: 3 } }),
    )) as { status: number; body: { id: string } }
    t.equal(placed.status, 201)
    const id = placed.body.id
    t.same(
      await inSandbox('route', 'GET /orders/:id', req('GET', `/orders/${id}`, { params: { id } })),
      await host.route('GET /orders/:id', { params: { id } }),
    )
    await inSandbox('event', 'inventory.stock.depleted', {
      id: 'evt-1',
      tenantId: 'tenant-a',
      type: 'inventory.stock.depleted',
      source: '@acme/inventory',
      subject: null,
      time: '2026-11-28T00:00:00.000Z',
      data: { sku: 'NUT-4' },
    })
    t.same(
      host.emitted.map((e) => [e.type, e.subject]),
      [
        ['orders.order.placed', id],
        ['orders.order.held', id],
      ],
    )
    t.match(host.collections.get('orders')!.get(id), { status: 'held', version: 2 })
    const stale = await inSandbox(
      'route',
      'PATCH /orders/:id',
      req('PATCH', `/orders/${id}`, { params: { id }, body: { qty: 9, version: 1 } }),
    )
    t.same(
      stale,
      { status: 409, body: { error: 'stale version' } },
      "the test host's KRN_ERR_CONFLICT reaches the sandboxed plugin as a catchable error",
    )
    t.same(
      await inSandbox(
        'route',
        'PATCH /orders/:id',
        req('PATCH', `/orders/${id}`, { params: { id }, body: { qty: 9, version: 2 } }),
      ),
      await host.route('GET /orders/:id', { params: { id } }),
    )
  },
)
