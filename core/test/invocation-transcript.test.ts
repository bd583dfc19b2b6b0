// A transcript masks what the AI redaction masks (e-mail, card, IBAN, tax id, phone) in every
// string it keeps, and leaves the rest as it was: strings that cannot hold any of those skip the
// regular expressions, with the same result as running them.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { mask, newRedaction } from '../src/ai/redaction.js'
import { maskable, summarize } from '../src/plugins/invocation-transcript.js'

const PERSONAL = [
  'write to jane.doe@example.com today',
  'a@b.io',
  'card 4111 1111 1111 1111',
  '4111111111111111',
  'iban DE89 3704 0044 0532 0130 00',
  'GB82WEST12345698765432',
  'vat DE123456789',
  'ein 12-3456789',
  'ssn 123-45-6789',
  'call +44 20 7946 0958',
  '(555) 123-4567 x',
  '12345678-1234-1234-1234-123456789012',
]
const PLAIN = [
  '',
  'Chai',
  'ALFKI',
  'NW-001',
  'Queso Cabrales 12 x 1 kg',
  'orders.order.placed',
  'DE12 short',
  'AB12 and some more text here',
  '01a24d9f-4e8c-740d-85c2-833c5401a55d',
  '2026-12-06T23:10:00.000Z',
  'x'.repeat(500),
]

t.test('every string keeps what the redaction makes of it', async (t) => {
  for (const s of [...PERSONAL, ...PLAIN]) {
    const cut = s.length > 120 ? `${s.slice(0, 120)}… (${s.length} chars)` : s
    t.equal(summarize(s), mask(cut, newRedaction()), JSON.stringify(s))
    if (mask(cut, newRedaction()) !== cut) t.ok(maskable(cut), `${JSON.stringify(s)} is looked at`)
  }
})

t.test('ids and timestamps keep what the redaction makes of them', async (t) => {
  // Random UUIDs (some with a group of digits only, which the phone or card shapes may match) and
  // timestamps, against the redaction itself.
  const hex = () => Math.floor(Math.random() * 16).toString(16)
  const group = (n: number, digitsOnly: boolean) =>
    Array.from({ length: n }, () => (digitsOnly ? String(Math.floor(Math.random() * 10)) : hex())).join('')
  let differ = 0
  for (let i = 0; i < 3000; i++) {
    const id = [8, 4, 4, 4, 12].map((n) => group(n, Math.random() < 0.2)).join('-')
    const at = new Date(Math.floor(Math.random() * 4e12)).toISOString()
    for (const s of [id, at, randomUUID()]) {
      if (summarize(s) !== mask(s, newRedaction())) differ++
    }
  }
  t.equal(differ, 0)
  t.notOk(maskable('01a24d9f-4e8c-740d-85c2-833c5401a55d'))
  t.notOk(maskable('2026-12-06T23:10:00.000Z'))
  t.ok(maskable('12345678-1234-1234-1234-123456789012'), 'a UUID with a group of digits only is looked at')
})

t.test('personal values inside a host call result are masked', async (t) => {
  const out = summarize({
    rows: [{ name: 'Jane', email: 'jane.doe@example.com', phone: '+44 20 7946 0958', sku: 'NW-001' }],
  }) as { rows: Array<Record<string, string>> }
  t.same(out.rows[0], { name: 'Jane', email: '[EMAIL_1]', phone: '[PHONE_1]', sku: 'NW-001' })
})

t.test('names, codes and short numbers are not looked at', async (t) => {
  for (const s of ['Chai', 'ALFKI', 'NW-001', 'Queso Cabrales 12 x 1 kg', 'orders.order.placed'])
    t.notOk(maskable(s), s)
})
