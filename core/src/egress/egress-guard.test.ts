import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { EgressGuard } from './egress-guard.js'
import { egressRequest } from './http-client.js'

const deny = new EgressGuard()

t.test('non-public addresses are refused, however they are spelled', async (t) => {
  const refused = [
    'http://127.0.0.1/',
    'http://127.1/',
    'http://2130706433/',
    'http://0x7f000001/',
    'http://0177.0.0.1/',
    'http://0/',
    'http://0.0.0.0/',
    'http://10.0.0.1/',
    'http://172.16.5.4/',
    'http://192.168.1.1/',
    'http://100.64.0.1/',
    'http://198.18.0.1/',
    'http://169.254.169.254/latest/meta-data/',
    'http://0xa9fea9fe/',
    'http://224.0.0.1/',
    'http://240.0.0.1/',
    'http://255.255.255.255/',
    'http://[::1]/',
    'http://[::]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://[::ffff:169.254.169.254]/',
    'http://[0:0:0:0:0:ffff:a00:1]/',
    'http://[64:ff9b::a9fe:a9fe]/',
    'http://[fc00::1]/',
    'http://[fd12:3456::1]/',
    'http://[fe80::1]/',
    'http://[2002:7f00:1::]/',
    'http://[::127.0.0.1]/',
    'http://localhost/',
    'ftp://example.com/',
    'file:///etc/passwd',
  ]
  for (const url of refused) await t.rejects(deny.resolve(url), { code: 'EVT_ERR_EGRESS_DENIED' }, url)
})

t.test('public addresses pass; the operator allow-list opens exactly what it names', async (t) => {
  t.equal((await deny.resolve('http://93.184.215.14/')).address, '93.184.215.14')
  t.equal((await deny.resolve('http://[2606:4700::1111]/')).address, '2606:4700::1111')
  const allow = new EgressGuard(['127.0.0.1', '10.1.0.0/16', 'localhost', 'fd00::/8'])
  t.equal(
    (await allow.resolve('http://2130706433:8080/')).address,
    '127.0.0.1',
    'decimal spelling of an allowed address',
  )
  t.ok(allow.allowsAddress('10.1.200.3'))
  t.notOk(allow.allowsAddress('10.2.0.1'), 'outside the allowed CIDR')
  t.notOk(allow.allowsAddress('127.0.0.2'), 'only the allowed address, not its /8')
  t.ok(allow.allowsAddress('::ffff:127.0.0.1'), 'the mapped form of an allowed address')
  t.ok(allow.allowsAddress('fd00::5'))
  t.ok((await allow.resolve('http://localhost/')).address, 'an allowed host name')
})

t.test('the connection goes to the address that was checked (no DNS rebinding)', async (t) => {
  const server = http.createServer((req, res) => res.end(`host ${req.headers.host}`))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise((r) => server.close(r)))
  const port = (server.address() as AddressInfo).port
  const guard = new EgressGuard(['127.0.0.1'])
  // The lookup hands over the checked address whatever the name would resolve to now.
  const lookup = EgressGuard.pinnedLookup({
    url: new URL('http://rebind.test/'),
    host: 'rebind.test',
    address: '127.0.0.1',
    family: 4,
  })
  const answers: unknown[] = []
  lookup('rebind.test', { all: true } as never, (...args: unknown[]) => answers.push(args))
  lookup('rebind.test', {} as never, (...args: unknown[]) => answers.push(args))
  t.same(answers, [
    [null, [{ address: '127.0.0.1', family: 4 }]],
    [null, '127.0.0.1', 4],
  ])
  const res = await egressRequest(guard, { url: `http://127.0.0.1:${port}/`, method: 'GET' })
  t.equal(res.status, 200)
  t.equal(res.body, `host 127.0.0.1:${port}`)
  await t.rejects(
    egressRequest(new EgressGuard(), { url: `http://127.0.0.1:${port}/`, method: 'GET' }),
    { code: 'EVT_ERR_EGRESS_DENIED' },
    'refused before any connection',
  )
})
