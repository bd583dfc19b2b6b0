import t from 'tap'
import { TrellisError } from '@trellis/plugin-sdk'
import { SBX, Sandbox } from '../src/index.js'
import type { HostCallHandler } from '../src/index.js'
import { bodiesBundle, makeBundle, mappedBuild } from './fixtures/bundles.js'
import { call, context, noHost, rejection } from './fixtures/harness.js'

const sandbox = await Sandbox.create({ workers: 2 })
t.teardown(() => sandbox.close())

const plugin = bodiesBundle('@acme/orders', {
  echo: 'return { input, tenant: ctx.tenantId, caller: ctx.caller.id, entry }',
  sequential: `
    const a = await host.call('orders.get', { id: 1 })
    const b = await host.call('orders.get', { id: 2 })
    return [a, b]`,
  concurrent: `
    return Promise.all([1, 2, 3, 4, 5].map((id) => host.call('orders.get', { id })))`,
  concurrentOneRefused: `
    const settled = await Promise.allSettled([
      host.call('orders.get', { id: 1 }),
      host.call('secrets.read', { name: 'db' }),
      host.call('orders.get', { id: 3 }),
    ])
    return settled.map((s) => (s.status === 'fulfilled' ? s.value : s.reason.code))`,
  settledOrder: `
    const order = []
    await Promise.all(['slow', 'fast'].map((id) => host.call('orders.get', { id }).then(() => order.push(id))))
    return order`,
  denied: `await host.call('secrets.read', { name: 'db' }); return 'unreachable'`,
  deniedCaught: `
    try { await host.call('secrets.read', { name: 'db' }) }
    catch (e) { return { caught: true, code: e.code, status: e.status, message: e.message, name: e.name, stackHasHost: /\\/work\\/|node:|\\.ts:|\\.mjs/.test(String(e.stack)) } }`,
  hostBug: `await host.call('orders.get', { id: 1 }); return 'unreachable'`,
  hostBugCaught: `try { await host.call('orders.get', {}) } catch (e) { return { code: e.code, message: e.message } }`,
  logs: `
    host.log('info', 'hello', { orderId: 7 })
    host.log('warn', 'careful')
    host.log('nonsense-level', 'coerced')
    console.log('from console', { a: 1 })
    return 'logged'`,
  manyLogs: `for (let i = 0; i < 1000; i++) host.log('info', 'line ' + i); return 'done'`,
  setGlobal: `globalThis.secret = input; Object.prototype.leaked = input; return 'set'`,
  getGlobal: `return { secret: typeof secret === 'undefined' ? null : secret, leaked: ({}).leaked ?? null }`,
  big: `return 'x'.repeat(input)`,
  poison: `return JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, "ok": 1}')`,
  throwCoded: `const e = new Error('out of stock'); e.code = 'KRN_ERR_CAPABILITY_DENIED'; e.status = 409; throw e`,
  undefinedOut: 'return undefined',
  argsEcho: `return host.call('echo', input)`,
  poisonArgsAndLogs: `
    const bad = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, "keep": 1}')
    host.log('info', 'poisoned fields', bad)
    return host.call('echo', bad)`,
})

await sandbox.load(plugin)

const ordersHost: HostCallHandler = async (op, args) => {
  if (op === 'orders.get') return { id: (args as { id: number }).id, total: 10 * (args as { id: number }).id }
  if (op === 'secrets.read')
    throw new TrellisError('KRN_ERR_CAPABILITY_DENIED', 403, 'Capability denied', 'plugin lacks the secrets capability')
  if (op === 'echo') return args
  throw new Error('unknown op')
}

t.test('load returns the declared entries', async (t) => {
  const { entries } = await sandbox.load(plugin)
  t.same(entries.route?.slice(0, 3), ['echo', 'sequential', 'concurrent'])
  t.equal(entries.event, undefined)
})

t.test('every entry kind is declared at load and invocable', async (t) => {
  const kinds = makeBundle(
    '@acme/kinds',
    `module.exports = {
    entries: { route: ['GET /x'], event: ['orders.order.placed'], action: ['cancelOrder'], workflowStep: ['approve'] },
    invoke: async (entry, input) => ({ kind: entry.kind, name: entry.name, input }),
  }`,
  )
  const { entries } = await sandbox.load(kinds)
  t.same(entries, {
    route: ['GET /x'],
    event: ['orders.order.placed'],
    action: ['cancelOrder'],
    workflowStep: ['approve'],
  })
  for (const [kind, names] of Object.entries(entries)) {
    const res = await sandbox.invoke({
      bundle: kinds,
      entry: { kind: kind as never, name: names[0]! },
      input: { k: kind },
      context: context('tenant-k'),
      onHostCall: noHost,
    })
    t.same(res.output, { kind, name: names[0], input: { k: kind } })
  }
  // a name declared under one kind is not an entry of another
  const wrong = await rejection(
    sandbox.invoke({
      bundle: kinds,
      entry: { kind: 'action', name: 'approve' },
      input: 1,
      context: context('tenant-k'),
      onHostCall: noHost,
    }),
  )
  t.equal(wrong.code, SBX.UNKNOWN_ENTRY.code)
})

t.test('load refuses a bundle whose digest does not match', async (t) => {
  const b = makeBundle('@acme/tampered', 'module.exports = { entries: {}, invoke: async () => 1 }')
  const err = await rejection(sandbox.load({ ...b, code: `${b.code}\n// tampered` }))
  t.equal(err.code, SBX.DIGEST_MISMATCH.code)
})

t.test('load refuses bundles that do not evaluate to the contract', async (t) => {
  const cases = {
    throws: 'throw new Error("boom at load")',
    syntax: 'module.exports = {',
    noInvoke: 'module.exports = { entries: { route: ["a"] } }',
    badEntries: 'module.exports = { entries: { route: [1] }, invoke: async () => 1 }',
    requires: 'const fs = require("fs"); module.exports = { entries: {}, invoke: async () => 1 }',
    loops: 'while (true) {}',
  }
  for (const [name, code] of Object.entries(cases)) {
    const err = await rejection(sandbox.load(makeBundle(`@acme/bad-${name.toLowerCase()}`, code)))
    t.equal(err.code, SBX.BUNDLE_INVALID.code, name)
  }
  // a failed load leaves nothing behind: the same id loads once fixed
  const fixed = makeBundle(
    '@acme/bad-throws',
    'module.exports = { entries: { route: ["a"] }, invoke: async () => "fixed" }',
  )
  await sandbox.load(fixed)
  t.equal((await call(sandbox, fixed, 'a')).output, 'fixed')
})

t.test('bundle ids and versions must look like package names and versions', async (t) => {
  for (const [id, version] of [
    ['@acme/x\n    at fake (/etc/passwd:1:1)', '1.0.0'],
    ['@acme/x', '1.0.0 (evil)'],
    ['', '1.0.0'],
  ]) {
    const b = makeBundle(id!, 'module.exports = { entries: {}, invoke: async () => 1 }', version)
    t.equal((await rejection(sandbox.load(b))).code, SBX.INVALID_REQUEST.code, JSON.stringify([id, version]))
  }
})

t.test('the same id and version with other code is a conflict', async (t) => {
  const other = makeBundle(plugin.id, 'module.exports = { entries: {}, invoke: async () => 1 }', plugin.version)
  t.equal((await rejection(sandbox.load(other))).code, SBX.BUNDLE_CONFLICT.code)
})

t.test('invoke returns the output, metrics and an outcome', async (t) => {
  const res = await call(sandbox, plugin, 'echo', { input: { q: 'x', n: [1, 2] } })
  t.same(res.output, {
    input: { q: 'x', n: [1, 2] },
    tenant: 'tenant-a',
    caller: 'user-1',
    entry: { kind: 'route', name: 'echo' },
  })
  t.equal(res.metrics.outcome, 'ok')
  t.ok(res.metrics.wallMs > 0)
  t.ok(res.metrics.cpuMs >= 0)
  t.ok(res.metrics.heapUsedBytes > 0)
  t.equal(res.metrics.hostCalls, 0)
  t.same(res.logs, [])
})

t.test('undeclared entries, unloaded bundles and oversized input are refused', async (t) => {
  t.equal((await rejection(call(sandbox, plugin, 'nope'))).code, SBX.UNKNOWN_ENTRY.code)
  const ghost = bodiesBundle('@acme/ghost', { a: 'return 1' })
  t.equal((await rejection(call(sandbox, ghost, 'a'))).code, SBX.BUNDLE_NOT_LOADED.code)
  const tooBig = await rejection(
    call(sandbox, plugin, 'echo', { input: 'y'.repeat(2000), limits: { maxInputBytes: 1000 } }),
  )
  t.equal(tooBig.code, SBX.PAYLOAD_TOO_LARGE.code)
  const badKind = await rejection(
    sandbox.invoke({
      bundle: plugin,
      entry: { kind: 'nope' as never, name: 'echo' },
      input: 1,
      context: context('t'),
      onHostCall: noHost,
    }),
  )
  t.equal(badKind.code, SBX.INVALID_REQUEST.code)
  const badLimit = await rejection(call(sandbox, plugin, 'echo', { limits: { cpuMs: -1 } }))
  t.equal(badLimit.code, SBX.INVALID_REQUEST.code)
})

t.test('host calls are relayed, sequentially and concurrently', async (t) => {
  const seen: unknown[] = []
  const handler: HostCallHandler = async (op, args, meta) => {
    seen.push([op, args, typeof meta.invocationId, meta.signal.aborted])
    return ordersHost(op, args, meta)
  }
  const seq = await call(sandbox, plugin, 'sequential', { onHostCall: handler })
  t.same(seq.output, [
    { id: 1, total: 10 },
    { id: 2, total: 20 },
  ])
  t.equal(seq.metrics.hostCalls, 2)
  t.same(seen[0], ['orders.get', { id: 1 }, 'string', false])
  const conc = await call(sandbox, plugin, 'concurrent', { onHostCall: ordersHost })
  t.same(
    (conc.output as Array<{ id: number }>).map((o) => o.id),
    [1, 2, 3, 4, 5],
  )
  t.equal(conc.metrics.hostCalls, 5)
})

t.test('host calls made together travel together, and each is still answered on its own', async (t) => {
  // The three calls leave the worker in one message; the handler still sees, and may refuse, each.
  const seen: string[] = []
  const handler: HostCallHandler = async (op, args, meta) => {
    seen.push(op)
    return ordersHost(op, args, meta)
  }
  const res = await call(sandbox, plugin, 'concurrentOneRefused', { onHostCall: handler })
  t.same(res.output, [{ id: 1, total: 10 }, 'KRN_ERR_CAPABILITY_DENIED', { id: 3, total: 30 }])
  t.same(seen, ['orders.get', 'secrets.read', 'orders.get'], 'in the order the plugin made them')
  t.equal(res.metrics.hostCalls, 3)
})

t.test('the answers to host calls made together reach the plugin together, in the order it made them', async (t) => {
  // The slow call is answered only once the fast one has been (and its answer, were it sent
  // alone, would have left: the turn after the fast handler returned). Plugin code still
  // resumes once for both, seeing them in the order it made them.
  let fastAnswered!: () => void
  const fastDone = new Promise<void>((resolve) => (fastAnswered = resolve))
  const handler: HostCallHandler = async (op, args, meta) => {
    if ((args as { id: string }).id === 'slow') {
      await fastDone
      await new Promise((resolve) => setImmediate(resolve))
      return ordersHost(op, args, meta)
    }
    const answer = await ordersHost(op, args, meta)
    fastAnswered()
    return answer
  }
  const res = await call(sandbox, plugin, 'settledOrder', { onHostCall: handler })
  t.same(res.output, ['slow', 'fast'])
  t.equal(res.metrics.hostCalls, 2)
})

t.test('host-call args and results are JSON copies', async (t) => {
  const res = await call(sandbox, plugin, 'argsEcho', {
    input: { a: [1, { b: 'c' }], d: null },
    onHostCall: ordersHost,
  })
  t.same(res.output, { a: [1, { b: 'c' }], d: null })
})

t.test('a TrellisError from the handler reaches the plugin and, uncaught, the caller with its code', async (t) => {
  const caught = await call(sandbox, plugin, 'deniedCaught', { onHostCall: ordersHost })
  t.same(caught.output, {
    caught: true,
    code: 'KRN_ERR_CAPABILITY_DENIED',
    status: 403,
    message: 'plugin lacks the secrets capability',
    name: 'TrellisError',
    stackHasHost: false,
  })
  const err = await rejection(call(sandbox, plugin, 'denied', { onHostCall: ordersHost }))
  t.ok(err instanceof TrellisError)
  t.equal(err.code, 'KRN_ERR_CAPABILITY_DENIED')
  t.equal(err.status, 403)
  t.equal(err.message, 'plugin lacks the secrets capability')
  t.equal(err.metrics?.outcome, 'KRN_ERR_CAPABILITY_DENIED')
  t.equal(err.metrics?.hostCalls, 1)
})

t.test('any other handler error reaches the plugin as SBX_ERR_HOST_CALL_FAILED without its message', async (t) => {
  const leaky: HostCallHandler = async () => {
    throw new Error('connect ECONNREFUSED 10.0.0.5:5432 at /srv/kernel/db.ts')
  }
  const caught = await call(sandbox, plugin, 'hostBugCaught', { onHostCall: leaky })
  const out = caught.output as { code: string; message: string }
  t.equal(out.code, SBX.HOST_CALL_FAILED.code)
  t.notMatch(out.message, /ECONNREFUSED|\/srv/)
  const err = await rejection(call(sandbox, plugin, 'hostBug', { onHostCall: leaky }))
  t.equal(err.code, SBX.HOST_CALL_FAILED.code)
  t.match(String((err.cause as TrellisError)?.cause), /ECONNREFUSED/, 'the kernel keeps the original as the cause')
})

t.test('a plugin cannot pass its own error off as a kernel error', async (t) => {
  const err = await rejection(call(sandbox, plugin, 'throwCoded'))
  t.equal(err.code, SBX.PLUGIN_ERROR.code)
  t.equal(err.message, 'out of stock')
  t.same(
    {
      code: (err.details as { pluginCode?: string }).pluginCode,
      status: (err.details as { pluginStatus?: number }).pluginStatus,
    },
    { code: 'KRN_ERR_CAPABILITY_DENIED', status: 409 },
  )
})

t.test('logs are captured with the invocation id, and limited', async (t) => {
  const res = await call(sandbox, plugin, 'logs', { context: { invocationId: 'inv-logs-1' } })
  t.same(
    res.logs.map((l) => [l.invocationId, l.level, l.message, l.fields]),
    [
      ['inv-logs-1', 'info', 'hello', { orderId: 7 }],
      ['inv-logs-1', 'warn', 'careful', undefined],
      ['inv-logs-1', 'info', 'coerced', undefined],
      ['inv-logs-1', 'info', 'from console {"a":1}', undefined],
    ],
  )
  t.ok(res.logs.every((l) => !Number.isNaN(Date.parse(l.time))))
  const many = await call(sandbox, plugin, 'manyLogs', { limits: { maxLogLines: 10 } })
  t.equal(many.output, 'done')
  t.equal(many.logs.length, 11, 'ten lines and a truncation notice')
  t.match(many.logs[10]!.message, /log limit/)
  const bytes = await call(sandbox, plugin, 'manyLogs', { limits: { maxLogBytes: 100 } })
  t.ok(bytes.logs.reduce((n, l) => n + l.message.length, 0) < 100 + 80)
})

t.test("one tenant's globals are never visible to another tenant", async (t) => {
  await call(sandbox, plugin, 'setGlobal', { tenant: 'tenant-a', input: 'a-secret' })
  for (let i = 0; i < 4; i++) {
    const other = await call(sandbox, plugin, 'getGlobal', { tenant: `tenant-b${i}` })
    t.same(other.output, { secret: null, leaked: null })
  }
  // the same installation on another tenant is another isolate too
  const sameInstall = await call(sandbox, plugin, 'getGlobal', {
    tenant: 'tenant-c',
    context: { installationId: 'inst-tenant-a' },
  })
  t.same(sameInstall.output, { secret: null, leaked: null })
})

t.test('output over the limit fails with SBX_ERR_PAYLOAD_TOO_LARGE', async (t) => {
  const ok = await call(sandbox, plugin, 'big', { input: 100, limits: { maxOutputBytes: 1000 } })
  t.equal(ok.output, 'x'.repeat(100))
  const err = await rejection(call(sandbox, plugin, 'big', { input: 5000, limits: { maxOutputBytes: 1000 } }))
  t.equal(err.code, SBX.PAYLOAD_TOO_LARGE.code)
})

t.test('output cannot poison prototypes in the host', async (t) => {
  const res = await call(sandbox, plugin, 'poison')
  const out = res.output as Record<string, unknown>
  t.same(Object.keys(out), ['ok'])
  const merged = deepMerge({}, out)
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.equal((merged as Record<string, unknown>).polluted, undefined)
  t.equal(Object.getPrototypeOf(out), Object.prototype)
})

t.test('host-call args and log fields cannot poison prototypes either', async (t) => {
  let received: unknown
  const res = await call(sandbox, plugin, 'poisonArgsAndLogs', {
    onHostCall: async (_op, args) => ((received = args), args),
  })
  t.same(Object.keys(received as object), ['keep'])
  t.same(Object.keys(res.logs[0]!.fields!), ['keep'])
  t.same(res.output, { keep: 1 })
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('undefined output arrives as null', async (t) => {
  t.equal((await call(sandbox, plugin, 'undefinedOut')).output, null)
})

t.test('a thrown error carries the plugin message and a stack mapped to its own source', async (t) => {
  const source = [
    'export const entries = { route: ["fail"] }', // 1
    '', // 2
    'function validate(order: { qty: number }) {', // 3
    '  if (order.qty < 1) {', // 4
    // biome-ignore lint/suspicious/noTemplateCurlyInString: plugin source text, not a template
    '    throw new Error(`quantity must be positive, got ${order.qty}`)', // 5
    '  }', // 6
    '}', // 7
    '', // 8
    'export async function invoke(entry: { name: string }, input: { qty: number }) {', // 9
    '  validate(input)', // 10
    '  return input', // 11
    '}', // 12
  ].join('\n')
  const { js, map } = await mappedBuild(source)
  const bundle = makeBundle('@acme/mapped', js, '1.0.0', map)
  await sandbox.load(bundle)
  const err = await rejection(
    sandbox.invoke({
      bundle,
      entry: { kind: 'route', name: 'fail' },
      input: { qty: 0 },
      context: context('tenant-a'),
      onHostCall: noHost,
    }),
  )
  t.equal(err.code, SBX.PLUGIN_ERROR.code)
  t.equal(err.message, 'quantity must be positive, got 0')
  t.match(err.stack, /at validate \(.*src\/plugin\.ts:5:11\)/)
  t.match(err.stack, /at invoke \(.*src\/plugin\.ts:10:3\)/)
  t.notMatch(err.stack, /\/work\/|node:internal|sandbox\/src|\.mjs|bootstrap/, 'no host frames or paths')
})

t.test('errors are TrellisErrors carrying metrics and logs', async (t) => {
  const b = bodiesBundle('@acme/logs-then-throw', {
    x: `host.log('info', 'about to fail'); throw new TypeError('nope')`,
  })
  await sandbox.load(b)
  const err = await rejection(call(sandbox, b, 'x'))
  t.ok(err instanceof TrellisError)
  t.equal(err.code, SBX.PLUGIN_ERROR.code)
  t.equal(err.status, SBX.PLUGIN_ERROR.status)
  t.equal(err.metrics?.outcome, SBX.PLUGIN_ERROR.code)
  t.same(
    err.logs?.map((l) => l.message),
    ['about to fail'],
  )
  t.match(err.stack, /^TypeError: nope/)
})

t.test('unload forgets a bundle', async (t) => {
  const b = bodiesBundle('@acme/short-lived', { a: 'return 1' })
  await sandbox.load(b)
  t.equal((await call(sandbox, b, 'a')).output, 1)
  await sandbox.unload(b)
  t.equal((await rejection(call(sandbox, b, 'a'))).code, SBX.BUNDLE_NOT_LOADED.code)
})

function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>): Record<string, unknown> {
  for (const key of Object.keys(source)) {
    const v = source[key]
    if (v && typeof v === 'object')
      target[key] = deepMerge((target[key] as Record<string, unknown>) ?? {}, v as Record<string, unknown>)
    else target[key] = v
  }
  return target
}
