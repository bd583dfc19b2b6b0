// The kernel under benchmark, in its own process: prints one JSON line with its URL, a tenant
// admin's access token, the tenant and its process id, then serves until killed.
import { announce, benchKernel, benchTenant } from './_tenant.js'

const kernel = await benchKernel()
const { url, token, tenantId } = await benchTenant(kernel)
announce(kernel, { url, token, tenantId, pid: process.pid })
