import t from 'tap'
import { redactUrl } from './redact.js'

t.test('credential-like query parameters are replaced in URLs, others kept', async (t) => {
  t.equal(redactUrl('/v1/me'), '/v1/me')
  t.equal(redactUrl('/v1/me?view=full&limit=5'), '/v1/me?view=full&limit=5')
  t.equal(redactUrl('/v1/me?access_token=eyJ.a.b&view=full'), '/v1/me?access_token=[redacted]&view=full')
  t.equal(
    redactUrl('/x?Access_Token=1&REFRESH-TOKEN=2&apiKey=3&client_secret=4&password=5&token=6'),
    '/x?Access_Token=[redacted]&REFRESH-TOKEN=[redacted]&apiKey=[redacted]&client_secret=[redacted]&password=[redacted]&token=[redacted]',
  )
  t.equal(
    redactUrl('/x?access%5Ftoken=secret'),
    '/x?access%5Ftoken=[redacted]',
    'a percent-encoded name is decoded before matching',
  )
  t.equal(redactUrl('/x?access_token'), '/x?access_token', 'a name without a value has nothing to hide')
  t.equal(
    redactUrl('/x?%E0%A4%A=1&token=2'),
    '/x?%E0%A4%A=1&token=[redacted]',
    'a malformed name does not stop the rest',
  )
})
