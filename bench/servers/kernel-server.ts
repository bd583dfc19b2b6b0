// The kernel under benchmark, in its own process: prints one JSON line with its URL, a tenant
// admin's access token, the tenant, that admin's user id and its process id, then serves until killed.
import { announce, benchKernel, benchTenant } from './_tenant.js'

const kernel = await benchKernel()
const { url, token, tenantId } = await benchTenant(kernel)
const [admin] = await kernel.ctx.db.asOwner((tx) =>
  tx.sql<{ id: string }>('select id from users where email = ?', ['admin@bench.test']),
)
announce(kernel, { url, token, tenantId, userId: admin!.id, pid: process.pid })
