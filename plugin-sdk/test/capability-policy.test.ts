import t from 'tap'
import { internalFetchTarget, internalFetchTargets, parseIpv4, subscriptionFindings } from '../src/index.js'

t.test('every URL spelling of an IPv4 address is read as the address it stands for', async (t) => {
  t.equal(parseIpv4('2130706433'), '127.0.0.1')
  t.equal(parseIpv4('0x7f000001'), '127.0.0.1')
  t.equal(parseIpv4('0177.0.0.1'), '127.0.0.1')
  t.equal(parseIpv4('127.1'), '127.0.0.1')
  t.equal(parseIpv4('2852039166'), '169.254.169.254')
  t.equal(parseIpv4('api.example.com'), undefined)
  t.equal(parseIpv4('4294967296'), undefined, 'out of range')
})

t.test('internal destinations are named, public ones are not', async (t) => {
  const reason = (h: string) => internalFetchTarget(h)?.reason
  t.equal(reason('127.0.0.1'), 'loopback')
  t.equal(reason('localhost:8080'), 'loopback')
  t.equal(reason('app.localhost'), 'loopback')
  t.equal(reason('169.254.169.254'), 'metadata')
  t.equal(reason('0xa9fea9fe'), 'metadata')
  t.equal(reason('169.254.10.1'), 'link-local')
  t.equal(reason('10.0.0.1:5432'), 'private')
  t.equal(reason('192.168.0.1'), 'private')
  t.equal(reason('172.31.255.255'), 'private')
  t.equal(reason('100.64.0.1'), 'carrier-grade NAT')
  t.equal(reason('0.0.0.0'), 'unspecified')
  t.equal(reason('[::1]:443'), 'loopback')
  t.equal(reason('::1'), 'loopback')
  t.equal(reason('[::]'), 'unspecified')
  t.equal(reason('[fd12:3456::1]'), 'unique local (private)')
  t.equal(reason('[fe80::1]'), 'link-local')
  t.equal(reason('[::ffff:169.254.169.254]'), 'metadata')
  t.equal(reason('metadata.google.internal'), 'metadata')
  t.equal(reason('db.internal'), 'internal name')
  t.equal(reason('printer.local'), 'internal name')
  t.equal(reason('redis'), 'internal name')
  for (const pub of ['api.example.com', '8.8.8.8', '*.example.com', '*', '[2606:4700::1111]', '172.32.0.1'])
    t.equal(internalFetchTarget(pub), undefined, pub)
})

t.test('the operator allow-list decides what stays grantable', async (t) => {
  const caps = ['data', 'http:fetch:api.example.com,127.0.0.1:8080,169.254.169.254', 'http:fetch:localhost']
  t.same(
    internalFetchTargets(caps).map((x) => x.entry),
    ['127.0.0.1:8080', '169.254.169.254', 'localhost'],
  )
  t.same(
    internalFetchTargets(caps, (x) => x.address === '127.0.0.1').map((x) => x.entry),
    ['169.254.169.254'],
  )
})

t.test('subscriptions: reserved namespaces, broad patterns, foreign wildcards, unknown namespaces', async (t) => {
  const m = (subs: string[]) => ({
    name: '@acme/notes',
    capabilities: subs.map((s) => `events:subscribe:${s}`),
    events: { emits: { 'notes.note.created': {} } },
  })
  const rules = (subs: string[], declared = new Set(['orders'])) =>
    subscriptionFindings(m(subs), declared).map((f) => `${f.rule} ${f.pattern}`)
  t.same(
    rules(['notes.**', 'notes.note.created', 'orders.order.placed']),
    [],
    'its own namespace and a declared event type pass',
  )
  t.same(rules(['kernel.*', 'marketplace.version.approved', 'audit.**', 'workflow.task.created']), [
    'reserved kernel.*',
    'reserved marketplace.version.approved',
    'reserved audit.**',
    'reserved workflow.task.created',
  ])
  t.same(rules(['**', '*.order.placed', 'orders.**', 'orders.*.placed', 'ghost.thing.done']), [
    'everything **',
    'any-namespace *.order.placed',
    'other-namespace-wildcard orders.**',
    'other-namespace-wildcard orders.*.placed',
    'unknown-namespace ghost.thing.done',
  ])
  t.same(
    subscriptionFindings({ name: '@acme/x', capabilities: [], events: { subscribes: ['kernel.tenant.created'] } }).map(
      (f) => f.rule,
    ),
    ['reserved'],
    'events.subscribes counts too',
  )
})

t.test('the lint warns early about what the marketplace will refuse', async (t) => {
  const { lintPlugin } = await import('../src/index.js')
  const manifest = {
    name: '@acme/x',
    version: '1.0.0',
    engines: { trellis: '*' },
    capabilities: ['http:fetch:169.254.169.254', 'events:subscribe:kernel.*', 'events:subscribe:**'],
  } as never
  const lint = lintPlugin({ manifest, entries: { routes: [], events: [], actions: [], workflows: [] } as never })
  t.same(
    lint.warnings
      .map((w) => w.rule)
      .filter((r) => r !== 'capability-unused')
      .sort(),
    ['http-fetch-internal', 'subscribe-broad', 'subscribe-reserved'],
  )
})
