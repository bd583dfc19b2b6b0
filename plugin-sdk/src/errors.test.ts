import t from 'tap'
import { defineErrors, TrellisError } from './errors.js'

t.test('a catalog builds coded errors with status, title and detail', async (t) => {
  const E = defineErrors('DEMO', {
    NOT_FOUND: { status: 404, title: 'Not found', message: (d: { what: string }) => `${d.what} was not found` },
    BUSY: { status: 503, title: 'Busy', message: () => 'try again later' },
  })
  const err = E.NOT_FOUND({ what: 'tenant' })
  t.ok(err instanceof TrellisError)
  t.equal(err.code, 'DEMO_ERR_NOT_FOUND')
  t.equal(err.status, 404)
  t.equal(err.message, 'tenant was not found')
  t.same(err.details, { what: 'tenant' })
  t.ok(E.NOT_FOUND.is(err))
  t.notOk(E.BUSY.is(err))
  t.same(
    E.entries.map((e) => e.code),
    ['DEMO_ERR_NOT_FOUND', 'DEMO_ERR_BUSY'],
  )
})

t.test('bad prefixes and names are refused', async (t) => {
  t.throws(() => defineErrors('demo', {}), TypeError)
  t.throws(() => defineErrors('DEMO', { 'not-ok': { status: 400, title: 'x', message: () => 'x' } }), TypeError)
})
