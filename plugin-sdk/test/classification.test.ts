// Data classification as a plugin author meets it: the manifest rules, the summary the
// marketplace review shows, and the in-memory test host refusing what the kernel refuses on
// encrypted fields.
import t from 'tap'
import {
  classificationSummary,
  collection,
  createTestHost,
  definePlugin,
  encryptedFields,
  encryptedQueryRefusal,
  validateManifest,
} from '../src/index.js'
import type { PluginContext, PluginManifest, Query } from '../src/index.js'

interface Contact {
  name: string
  email: string
  city?: string
}

const manifest = (schemaProps: Record<string, unknown>, extra: Partial<PluginManifest> = {}): PluginManifest => ({
  name: '@acme/contacts',
  version: '1.0.0',
  engines: { trellis: '^0.1.0' },
  capabilities: ['data'],
  collections: { contacts: { schema: { type: 'object', properties: schemaProps } } },
  ...extra,
})
const classified = {
  name: { type: 'string', classification: 'internal' },
  email: { type: 'string', classification: 'personal' },
  city: { type: 'string', classification: 'public' },
}
const rules = (m: PluginManifest) => {
  const v = validateManifest(m)
  return v.ok ? [] : v.errors.map((e) => [e.pointer, e.rule])
}

t.test('the manifest rules', async (t) => {
  t.same(rules(manifest(classified)), [], 'classified fields validate')
  t.same(
    rules(manifest({ ...classified, email: { ...classified.email, subject: 'contact' } })),
    [],
    'a top-level field may identify a data subject',
  )
  t.same(rules(manifest({ email: { type: 'string', classification: 'personal', subject: 'A Contact!' } })), [
    ['/collections/contacts/schema/properties/email/subject', 'classification'],
  ])
  t.same(
    rules(
      manifest({
        person: { type: 'object', properties: { email: { type: 'string', subject: 'contact' } } },
      }),
    ),
    [['/collections/contacts/schema/properties/person/properties/email/subject', 'classification']],
    'only a top-level field identifies a subject',
  )
  t.same(rules(manifest({ email: { type: 'string', classification: 'secret' } })), [
    ['/collections/contacts/schema/properties/email/classification', 'classification'],
  ])
  t.same(
    rules(
      manifest({
        address: { type: 'object', properties: { street: { type: 'string', classification: 'personal' } } },
      }),
    ),
    [['/collections/contacts/schema/properties/address/properties/street/classification', 'classification']],
    'only top-level fields are classified',
  )
  const metric = {
    title: 'Contacts by e-mail',
    permission: 'contacts.read',
    collection: 'contacts',
    measure: { count: true },
    time: 'createdAt',
    dimensions: { email: 'email' },
  }
  t.same(
    rules(manifest(classified, { metrics: { by_email: metric } } as Partial<PluginManifest>)),
    [['/metrics/by_email', 'classification']],
    'a metric cannot aggregate an encrypted field',
  )
})

t.test('the summary the review shows', async (t) => {
  const m = manifest({ ...classified, note: { type: 'string' } })
  t.same(classificationSummary(m), {
    collections: {
      contacts: { fields: { name: 'internal', email: 'personal', city: 'public' }, unclassified: ['note'] },
    },
    unclassified: 1,
    encrypted: 1,
  })
  t.same(encryptedFields(m.collections!.contacts!.schema), ['email'])
})

t.test('queries an encrypted field cannot answer', async (t) => {
  const enc = new Set(['email'])
  t.equal(encryptedQueryRefusal(enc, { where: { email: 'a@b.test', city: { prefix: 'Lo' } } }), undefined)
  t.equal(encryptedQueryRefusal(enc, { where: { email: { in: ['a@b.test'] }, name: { gt: 'A' } } }), undefined)
  t.same(encryptedQueryRefusal(enc, { where: { or: [{ city: 'x' }, { email: { prefix: 'a' } }] } }), {
    field: 'email',
    operation: '"prefix"',
  })
  t.same(encryptedQueryRefusal(enc, { sort: [{ field: 'email' }] }), { field: 'email', operation: 'sorting' })
  t.same(encryptedQueryRefusal(enc, { where: { '$e:email': 'x' } }), { field: '$e:email', operation: 'filtering' })
})

t.test('the test host refuses them as the kernel does', async (t) => {
  const plugin = definePlugin({
    manifest: manifest(classified),
    collections: { contacts: collection<Contact>() },
    actions: {
      add: async (c: Contact, ctx: PluginContext<{ contacts: Contact }>) => ctx.data.contacts.insert(c),
      find: async (q: Query<Contact>, ctx: PluginContext<{ contacts: Contact }>) => ctx.data.contacts.find(q),
    },
  })
  const host = createTestHost(plugin)
  await host.action('add', { name: 'Ada', email: 'ada@example.test', city: 'London' })
  const found = (await host.action('find', { where: { email: 'ada@example.test' } })) as { items: Contact[] }
  t.equal(found.items.length, 1, 'exact match works')
  await t.rejects(host.action('find', { where: { email: { prefix: 'ada' } } }), {
    code: 'GOV_ERR_ENCRYPTED_FIELD_QUERY',
  })
  await t.rejects(host.action('find', { sort: [{ field: 'email', direction: 'desc' }] }), {
    code: 'GOV_ERR_ENCRYPTED_FIELD_QUERY',
  })
})
