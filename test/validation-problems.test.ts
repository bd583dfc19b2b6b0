// Validation errors name the field and, for a choice, the values it allows.
import t from 'tap'
import { toTrellisError } from '../core/src/http/problem.js'

const fastifyError = (validation: unknown[], validationContext = 'body') =>
  Object.assign(new Error('validation'), { validation, validationContext, statusCode: 400 })

t.test('an enum names the field and its allowed values', async (t) => {
  const e = toTrellisError(
    fastifyError(
      [
        {
          instancePath: '/status',
          message: 'must be equal to one of the allowed values',
          params: { allowedValues: ['open', 'done'] },
        },
      ],
      'querystring',
    ),
  )
  t.equal(e.code, 'KRN_ERR_VALIDATION_FAILED')
  t.equal(e.message, 'querystring/status must be equal to one of the allowed values (allowed: "open", "done")')
})

t.test('an unknown field is named', async (t) => {
  const e = toTrellisError(
    fastifyError([
      { instancePath: '', message: 'must NOT have additional properties', params: { additionalProperty: 'colour' } },
    ]),
  )
  t.equal(e.message, 'body must NOT have additional properties ("colour" is not one of its fields)')
})

t.test('a const names its one value; other issues keep their message', async (t) => {
  t.equal(
    toTrellisError(
      fastifyError([{ instancePath: '/kind', message: 'must be equal to constant', params: { allowedValue: 'x' } }]),
    ).message,
    'body/kind must be equal to constant (allowed: "x")',
  )
  t.equal(
    toTrellisError(
      fastifyError([{ instancePath: '/qty', message: 'must be >= 0', params: { comparison: '>=', limit: 0 } }]),
    ).message,
    'body/qty must be >= 0',
  )
})
