import type { FastifyReply, FastifyRequest } from 'fastify'
import { isTrellisError, PROBLEM_TYPE_PREFIX, type RouteOutput } from '@trellis/plugin-sdk'
import { redactUrl } from '../observability/redact.js'
import type { Api } from '../http/types.js'
import type { PluginHost } from './plugin-host.js'
import { AUTH, KRN, PLG } from '../errors.js'
import { principalOf } from '../http/guards.js'
import { KERNEL_PERMISSIONS } from '../identity/permissions.js'
import { matchRoute } from './route-table.js'
import { checkRequestSchema, schemaProblems } from './schemas.js'

// Headers a plugin may not set: framing and connection management belong to the kernel, and
// cookies or CORS would let one plugin act for the whole API origin.
const FORBIDDEN_HEADERS =
  /^(content-length|transfer-encoding|connection|keep-alive|upgrade|set-cookie|host|x-request-id|access-control-.*|strict-transport-security)$/i
const HEADER_VALUE = /^[\t\x20-\x7e]*$/
const KERNEL_PERMISSION_NAMES: ReadonlySet<string> = new Set(Object.values(KERNEL_PERMISSIONS))

/**
 * The caller's permissions for a plugin: its own, plus — for those who may install plugins, and
 * so could configure this one and grant anything it contributes anyway — every permission the
 * plugin contributes (never a kernel permission).
 */
export function effectivePermissions(
  held: ReadonlySet<string>,
  contributed: Array<{ name: string }> | undefined,
): Set<string> {
  const out = new Set(held)
  if (held.has(KERNEL_PERMISSIONS.pluginsInstall))
    for (const c of contributed ?? []) if (!KERNEL_PERMISSION_NAMES.has(c.name)) out.add(c.name)
  return out
}

/** Splits `/v1/x/<mount>/rest` (or `/v1/x/@scope/name/rest`) into the mount and the rest. */
function splitMount(wild: string): { mount: string; byName: boolean; rest: string } {
  const parts = wild.split('/')
  if (parts[0]?.startsWith('@'))
    return { mount: `${parts[0]}/${parts[1] ?? ''}`, byName: true, rest: `/${parts.slice(2).join('/')}` }
  return { mount: parts[0] ?? '', byName: false, rest: `/${parts.slice(1).join('/')}` }
}

/**
 * `/v1/x/<plugin>/*`: the caller's tenant's installation of the plugin answers, in the sandbox,
 * with the caller's identity. Permissions and request schemas declared in the manifest are
 * enforced before the plugin runs, response schemas after.
 */
export function registerPluginRoutes(
  app: Api,
  deps: { plugins: Pick<PluginHost, 'installed' | 'currentVersion' | 'invoke'> },
): void {
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const p = principalOf(request)
    const { mount, byName, rest } = splitMount((request.params as { '*': string })['*'])
    const tenantId = p.orgId
    const plugins = p.orgKind === 'tenant' ? await deps.plugins.installed(tenantId) : undefined
    const inst = byName ? plugins?.byPlugin.get(mount) : plugins?.byMount.get(mount)
    if (!inst) throw PLG.NOT_INSTALLED({ name: mount })
    const version = await deps.plugins.currentVersion(tenantId, inst)
    const method = request.method.toUpperCase()
    const found = matchRoute(version.manifest, method, rest)
    if (!found || 'methodMismatch' in found) throw KRN.ROUTE_NOT_FOUND({ method, url: request.url.split('?')[0]! })
    const { route, params } = found
    const permissions = effectivePermissions(p.permissions, version.manifest.permissions)
    if (route.declared.permission && !permissions.has(route.declared.permission))
      throw AUTH.FORBIDDEN({ permission: route.declared.permission })
    const body = request.body ?? null
    const query = request.query as Record<string, string | string[]>
    const key = `${version.id}:${route.entry}`
    checkRequestSchema(`${key}:params`, route.declared.request?.params, params, 'params')
    checkRequestSchema(`${key}:query`, route.declared.request?.query, query, 'querystring')
    checkRequestSchema(`${key}:body`, route.declared.request?.body, body, 'body')
    const headers: Record<string, string> = {}
    for (const [h, v] of Object.entries(request.headers))
      if (h !== 'authorization' && h !== 'cookie' && typeof v === 'string') headers[h] = v
    const output = (await deps.plugins
      .invoke({
        tenantId,
        installation: inst,
        entry: { kind: 'route', name: route.entry },
        input: { method, path: rest, params, query, headers, body },
        caller: { kind: p.kind, id: p.id, permissions: [...permissions] },
      })
      .catch((err: unknown) => {
        if (isTrellisError(err) && err.code === PLG.TOO_MANY_INVOCATIONS.code)
          reply.header('retry-after', String((err.details as { retryAfterSeconds: number }).retryAfterSeconds))
        throw err
      })) as RouteOutput
    if (
      !output ||
      typeof output !== 'object' ||
      !Number.isInteger(output.status) ||
      output.status < 200 ||
      output.status > 599
    ) {
      throw PLG.RESPONSE_INVALID({
        reason: `${inst.plugin} answered ${route.entry} without a status between 200 and 599`,
      })
    }
    const responseSchema = route.declared.response?.[String(output.status)]
    if (responseSchema !== undefined) {
      const problems = schemaProblems(`${key}:response:${output.status}`, responseSchema, output.body ?? null)
      if (problems.length)
        throw PLG.RESPONSE_INVALID({
          reason: `${inst.plugin} answered ${route.entry} with a ${output.status} body that does not match its schema: ${problems.map((x) => `${x.pointer || '/'} ${x.message}`).join('; ')}`,
        })
    }
    for (const [h, v] of Object.entries(output.headers ?? {})) {
      if (
        typeof v === 'string' &&
        !FORBIDDEN_HEADERS.test(h) &&
        /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(h) &&
        HEADER_VALUE.test(v)
      )
        reply.header(h, v)
    }
    reply.code(output.status)
    if (output.status === 204 || output.body === null || output.body === undefined) return reply.send()
    // A plugin's problem (the SDK's problemResponse) answers exactly like the kernel's: the
    // same media type, and `instance` the URL asked.
    const problem = output.body as { type?: unknown; code?: unknown }
    if (
      typeof problem === 'object' &&
      typeof problem.code === 'string' &&
      problem.type === `${PROBLEM_TYPE_PREFIX}${problem.code}`
    ) {
      return reply
        .type('application/problem+json; charset=utf-8')
        .send(JSON.stringify({ ...output.body, instance: redactUrl(request.url) }))
    }
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(output.body))
  }
  app.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/x/*', schema: { hide: true }, handler })
}
