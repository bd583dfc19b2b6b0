import t from 'tap'
import { defineErrors, problem, problemFromError, rowsProblem, TrellisError, worded } from './errors.js'

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

t.test('problem answers a route with the typed problem, in either form', async (t) => {
  const E = defineErrors('DEMO', {
    GONE: { status: 404, title: 'Gone', message: worded },
    BUSY: { status: 503, title: 'Busy', message: (d: { for: number }) => `busy for ${d.for} s` },
  })
  const worded1 = problem(E.GONE, 'no order 42', { order: '42' })
  t.same(worded1, {
    status: 404,
    headers: { 'content-type': 'application/problem+json' },
    body: {
      order: '42',
      type: 'urn:trellis:error:DEMO_ERR_GONE',
      title: 'Gone',
      status: 404,
      code: 'DEMO_ERR_GONE',
      detail: 'no order 42',
    },
  })
  const made = problem(E.BUSY({ for: 3 }))
  t.equal(made.status, 503)
  t.equal(made.body.code, 'DEMO_ERR_BUSY')
  t.equal(made.body.detail, 'busy for 3 s')
  t.equal(problem(E.GONE, 'x', { code: 'FORGED', status: 200 }).body.code, 'DEMO_ERR_GONE', 'extra never overrides')
})

t.test('a thrown worded error carries its extension members to problemFromError', async (t) => {
  const E = defineErrors('DEMO', { SHORT: { status: 409, title: 'Short', message: worded } })
  const thrown = E.SHORT({ detail: 'still short', extra: { short: [{ sku: 'A' }] } })
  const res = problemFromError(thrown, [E])
  t.equal(res.status, 409)
  t.same(res.body.short, [{ sku: 'A' }])
  t.equal(res.body.detail, 'still short')
  t.throws(() => problemFromError(new Error('boom'), [E]), /boom/, 'anything else is rethrown')
  const other = defineErrors('OTHER', { X: { status: 400, title: 'X', message: worded } })
  t.throws(() => problemFromError(other.X({ detail: 'x' }), [E]), 'another catalog is rethrown')
})

t.test('rowsProblem refuses a bulk write with every row, sorted', async (t) => {
  const E = defineErrors('DEMO', { ROWS: { status: 422, title: 'Invalid rows', message: worded } })
  const res = rowsProblem(
    E.ROWS,
    [
      { row: 3, field: 'sku', code: 'required', message: 'sku is required' },
      { row: 1, code: 'exists', message: 'A exists already' },
      { row: 3, field: 'qty', code: 'invalid', message: 'qty must be a number' },
    ],
    4,
  )
  t.equal(res.status, 422)
  t.equal(res.body.code, 'DEMO_ERR_ROWS')
  t.equal(res.body.detail, '2 of 4 rows are invalid; nothing was written')
  t.equal(res.body.rows, 4)
  t.same(
    (res.body.errors as Array<{ row: number }>).map((e) => e.row),
    [1, 3, 3],
  )
  t.equal(
    rowsProblem(E.ROWS, [{ row: 1, code: 'x', message: 'x' }], 2, 'rules').body.detail,
    '1 of 2 rules are invalid; nothing was written',
  )
})
