// The kernel under benchmark, in its own process: prints one JSON line with its URL, a tenant
// admin's access token, the tenant, that admin's user id, a second member (whose role the users
// write changes), an installation (whose settings the installations write changes) and its
// process id, then serves until killed.
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { announce, benchKernel, benchTenant, installBuilt } from './_tenant.js'

const kernel = await benchKernel()
const { url, token, tenantId, call } = await benchTenant(kernel)
const [admin] = await kernel.ctx.db.asOwner((tx) =>
  tx.sql<{ id: string }>('select id from users where email = ?', ['admin@bench.test']),
)
// A member as an accepted invitation leaves one: a user and a membership with a built-in role.
const memberId = randomUUID()
await kernel.ctx.db.asOwner(async (tx) => {
  await tx.sql(`insert into users (id, email, name) values (?::uuid, 'member@bench.test', 'Bench member')`, [memberId])
  await tx.sql(
    `insert into memberships (id, tenant_id, org_kind, user_id, role_id)
     select ?::uuid, ?::uuid, 'tenant', ?::uuid, id from roles where builtin and name = 'tenant_member'`,
    [randomUUID(), tenantId, memberId],
  )
})
await installBuilt(kernel, fileURLToPath(new URL('../fixtures/notes-plugin', import.meta.url)), call, token)
const [installation] = await kernel.ctx.db.asOwner((tx) =>
  tx.sql<{ id: string }>('select id from plugin_installations where tenant_id = ?::uuid', [tenantId]),
)
announce(kernel, {
  url,
  token,
  tenantId,
  userId: admin!.id,
  memberId,
  installationId: installation!.id,
  pid: process.pid,
})
