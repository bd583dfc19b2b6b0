import t from 'tap'
import { DEFAULT_PASSWORD_COST, hashPassword, passwordCost, verifyPassword } from './passwords.js'

t.test("new hashes use OWASP's cost unless TRELLIS_PASSWORD_COST lowers it", async (t) => {
  t.equal(DEFAULT_PASSWORD_COST, 17)
  t.equal(passwordCost({}), 17, 'unset: N = 2^17 (128 MiB)')
  t.equal(passwordCost({ TRELLIS_PASSWORD_COST: ' ' }), 17)
  t.equal(passwordCost({ TRELLIS_PASSWORD_COST: '12' }), 12)
  t.throws(() => passwordCost({ TRELLIS_PASSWORD_COST: '8' }), { code: 'KRN_ERR_CONFIG_INVALID' })
})

t.test('a hash records its own cost, so hashes made at another cost still verify', async (t) => {
  const saved = process.env.TRELLIS_PASSWORD_COST
  t.teardown(() => {
    if (saved === undefined) delete process.env.TRELLIS_PASSWORD_COST
    else process.env.TRELLIS_PASSWORD_COST = saved
  })
  delete process.env.TRELLIS_PASSWORD_COST
  const strong = await hashPassword('correct horse battery')
  t.match(strong, /^scrypt\$131072\$8\$1\$/, 'the default hash is N=2^17, r=8, p=1')
  process.env.TRELLIS_PASSWORD_COST = '10'
  const light = await hashPassword('correct horse battery')
  t.match(light, /^scrypt\$1024\$8\$1\$/)
  t.ok(await verifyPassword('correct horse battery', strong), 'the 2^17 hash verifies while new ones are lighter')
  t.ok(await verifyPassword('correct horse battery', light))
  t.notOk(await verifyPassword('correct horse staple', strong), 'a wrong password is refused')
  t.notOk(await verifyPassword('correct horse battery', null), 'no account: refused')
})
