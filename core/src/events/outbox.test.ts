import t from 'tap'
import { eventRow } from './outbox.js'

const none = { tenantId: '0190a0a0-0000-7000-8000-000000000001', gen: '7' }
const event = (type: string) => ({ type, subject: 'role/1', data: { n: 1 } })

t.test('a row names the patterns of its type when nobody subscribes, on every write of the type', async (t) => {
  for (let i = 0; i < 3; i++) {
    const row = eventRow(event('kernel.role.created'), none)
    t.equal(row[1], 'kernel.role.created')
    t.equal(row[5], none.tenantId)
    t.same(row.slice(6, 9), ['7', '7', '7'])
    t.equal(row[9], '{*,kernel.role.created,kernel.*,kernel.role.*}')
  }
  const pending = eventRow(event('kernel.role.created'))
  t.equal(pending[5], null)
  t.equal(pending[9], null)
})

t.test('a type that is not one is refused every time, whatever was written before', async (t) => {
  eventRow(event('kernel.role.deleted'))
  for (let i = 0; i < 2; i++) {
    t.throws(() => eventRow(event('Not A Type')), { code: 'EVT_ERR_EVENT_TYPE_INVALID' })
    t.throws(() => eventRow(event(`acme.thing.${'x'.repeat(200)}`)), { code: 'EVT_ERR_EVENT_TYPE_INVALID' })
  }
})

t.test('many distinct types (a plugin naming its own) are each checked and matched right', async (t) => {
  const wrong: string[] = []
  for (let i = 0; i < 2500; i++) {
    const type = `acme.thing${i}.done`
    if (eventRow(event(type), none)[9] !== `{*,${type},acme.*,acme.thing${i}.*}`) wrong.push(type)
  }
  t.same(wrong, [])
  t.equal(eventRow(event('kernel.role.created'), none)[9], '{*,kernel.role.created,kernel.*,kernel.role.*}')
  t.throws(() => eventRow(event('acme.Bad')), { code: 'EVT_ERR_EVENT_TYPE_INVALID' })
})
