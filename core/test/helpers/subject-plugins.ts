// Three plugins holding personal data about the same kind of data subject (`contact`): one
// bundle (fixtures/plugins/subjects) registered under three names with three collections.
import { builtFixture, registerVersion } from './plugin-versions.js'
import { addUser, createTenantWithAdmin, type TestKernel } from './test-kernel.js'

const person = (subjectField: string, personal: string[], internal: string[]) => ({
  type: 'object',
  additionalProperties: false,
  required: [subjectField],
  properties: Object.fromEntries([
    [subjectField, { type: 'string', classification: 'personal', subject: 'contact' }],
    ...personal.map((f) => [f, { type: 'string', classification: 'personal' }]),
    ...internal.map((f) => [f, { type: 'string', classification: 'internal' }]),
  ]),
})

/** The CRM shares a contact's record in an event (its values in the payload). */
export const SHARED_EVENT = 'crm.contact.shared'

/** Plugin name → its one collection, the schema that declares the subject field, and its capabilities. */
export const SUBJECT_PLUGINS = {
  '@acme/crm': {
    collection: 'contacts',
    subjectField: 'email',
    schema: person('email', ['name', 'phone'], ['tier']),
    capabilities: ['data', 'events:emit:crm.contact.*'],
  },
  '@acme/billing': {
    collection: 'invoices',
    subjectField: 'customerEmail',
    schema: person('customerEmail', ['billingAddress'], ['amount']),
    capabilities: ['data'],
  },
  '@acme/helpdesk': {
    collection: 'tickets',
    subjectField: 'requester',
    schema: person('requester', ['body'], ['status']),
    capabilities: ['data'],
  },
} as const

export type SubjectPlugin = keyof typeof SUBJECT_PLUGINS

/** Registers the three plugins (approved) in the kernel. */
export async function registerSubjectPlugins(k: TestKernel): Promise<void> {
  const built = await builtFixture('subjects')
  for (const [name, p] of Object.entries(SUBJECT_PLUGINS)) {
    const manifest = {
      ...built.manifest,
      name,
      capabilities: p.capabilities,
      collections: { [p.collection]: { schema: p.schema, indexes: [{ fields: [p.subjectField] }] } },
      ...(name === '@acme/crm' ? { events: { emits: { [SHARED_EVENT]: { schema: { type: 'object' } } } } } : {}),
    }
    await registerVersion(k, { manifest, code: built.code, sourceMap: built.sourceMap })
  }
}

/** Installs the plugins in a tenant. */
export async function installSubjectPlugins(k: TestKernel, token: string, plugins: SubjectPlugin[]): Promise<void> {
  for (const plugin of plugins) {
    const r = await k.req('POST', '/v1/installations', {
      token,
      body: { plugin, version: '1.0.0', capabilities: SUBJECT_PLUGINS[plugin].capabilities },
    })
    if (r.status !== 201) throw new Error(`install ${plugin}: ${r.status} ${JSON.stringify(r.body)}`)
  }
}

/** Writes a record through the plugin's route (as its users would). */
export async function plant(k: TestKernel, token: string, plugin: SubjectPlugin, record: Record<string, string>) {
  const r = await k.req('POST', `/v1/x/${plugin}/${SUBJECT_PLUGINS[plugin].collection}`, { token, body: record })
  if (r.status !== 201) throw new Error(`plant in ${plugin}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body as Record<string, string> & { id: string }
}

/** Has the CRM share a contact in a `crm.contact.shared` event (through its route, as its users would). */
export async function share(k: TestKernel, token: string, id: string): Promise<string> {
  const r = await k.req('POST', `/v1/x/@acme/crm/contacts/${id}/share`, { token })
  if (r.status !== 202) throw new Error(`share: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body.event as string
}

/** Reads a record back through the plugin's route. */
export function readBack(k: TestKernel, token: string, plugin: SubjectPlugin, id: string) {
  return k.req('GET', `/v1/x/${plugin}/${SUBJECT_PLUGINS[plugin].collection}/${id}`, { token })
}

/** Tenant A with the three plugins, tenant B with the CRM only, and a member of A without governance.manage. */
export interface SubjectTenants {
  a: Awaited<ReturnType<typeof createTenantWithAdmin>>
  b: Awaited<ReturnType<typeof createTenantWithAdmin>>
  member: Awaited<ReturnType<typeof addUser>>
}

/** Creates {@link SubjectTenants}. */
export async function subjectTenants(k: TestKernel): Promise<SubjectTenants> {
  const a = await createTenantWithAdmin(k, 'subjects-a')
  const b = await createTenantWithAdmin(k, 'subjects-b')
  await installSubjectPlugins(k, a.token, Object.keys(SUBJECT_PLUGINS) as SubjectPlugin[])
  await installSubjectPlugins(k, b.token, ['@acme/crm'])
  const member = await addUser(k, a.token, 'member@subjects-a.test', 'tenant_member')
  return { a, b, member }
}
