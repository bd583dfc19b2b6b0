import { createHash } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Api } from './types.js'
import canonicalizeModule from 'canonicalize'
import type { OrgTx } from './route-deps.js'
import type { SecretBox } from '../crypto/secret-box.js'
import { KRN } from '../errors.js'
import { toArray } from './route-hooks.js'

const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined
const KEY = /^[\x21-\x7e]{1,255}$/
// A request that started but never finished (its process died) frees its key after this long.
const ABANDONED_AFTER = '60 seconds'

declare module 'fastify' {
  interface FastifyRequest {
    idempotency?: { key: string; principal: string; orgId: string }
  }
}

/**
 * `Idempotency-Key` on authenticated POSTs: the first request with a key runs and its
 * response is stored; a retry with the same key and body gets that response again
 * (`Idempotent-Replayed: true`); the same key with another body or route is a 409.
 * Server errors are not stored, so a retry after one runs again.
 */
export function registerIdempotency(app: Api, deps: { orgTx: OrgTx; secrets: Pick<SecretBox, 'seal' | 'open'> }): void {
  // Only POST routes carry the hooks, so other requests pay nothing for them.
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    if (!methods.includes('POST')) return
    route.preHandler = [...toArray(route.preHandler), claimHook]
    route.onSend = [...toArray(route.onSend), rememberHook]
  })

  // Callback style: a request without a key — nearly every one — passes both without a promise.
  function claimHook(request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void {
    if (request.headers['idempotency-key'] === undefined || !request.principal) return done()
    replayOrClaim(request, reply).then(() => done(), done)
  }

  function rememberHook(
    request: FastifyRequest,
    reply: FastifyReply,
    payload: unknown,
    done: (err: Error | null, payload?: unknown) => void,
  ): void {
    if (!request.idempotency) return done(null, payload)
    remember(request, reply, payload).then((p) => done(null, p), done)
  }

  async function replayOrClaim(request: FastifyRequest, reply: FastifyReply) {
    const key = request.headers['idempotency-key']
    if (key === undefined || !request.principal) return
    if (typeof key !== 'string' || !KEY.test(key)) throw KRN.IDEMPOTENCY_KEY_INVALID()
    const p = request.principal
    const principal = `${p.kind}:${p.id}`
    const requestHash = hashRequest(request)
    const stored = await deps.orgTx(p.orgId, async (tx) => {
      const inserted = await tx.sql(
        `insert into idempotency_keys (tenant_id, principal, key, request_hash) values (?::uuid, ?, ?, ?)
         on conflict (tenant_id, principal, key) do update set request_hash = excluded.request_hash, created_at = now()
           where idempotency_keys.status_code is null and idempotency_keys.created_at < now() - interval '${ABANDONED_AFTER}'
         returning key`,
        [p.orgId, principal, key, requestHash],
      )
      if (inserted.length > 0) return undefined
      const [row] = await tx.sql<{
        request_hash: string
        status_code: number | null
        response_body: string | null
        content_type: string | null
      }>(
        'select request_hash, status_code, response_body, content_type from idempotency_keys where tenant_id = ?::uuid and principal = ? and key = ?',
        [p.orgId, principal, key],
      )
      return row
    })
    if (!stored) {
      request.idempotency = { key, principal, orgId: p.orgId }
      return
    }
    if (stored.request_hash !== requestHash) throw KRN.IDEMPOTENCY_KEY_REUSED()
    if (stored.status_code === null) throw KRN.IDEMPOTENT_REQUEST_IN_PROGRESS()
    reply.code(stored.status_code).header('idempotent-replayed', 'true')
    if (stored.content_type) reply.type(stored.content_type)
    return reply.send(
      stored.response_body ? deps.secrets.open(stored.response_body, boxLabel(p.orgId, principal, key)) : '',
    )
  }

  async function remember(request: FastifyRequest, reply: FastifyReply, payload: unknown) {
    const idem = request.idempotency
    if (!idem) return payload
    request.idempotency = undefined
    const params = [idem.orgId, idem.principal, idem.key]
    if (reply.statusCode >= 500) {
      await deps.orgTx(
        idem.orgId,
        (tx) => tx.sql('delete from idempotency_keys where tenant_id = ?::uuid and principal = ? and key = ?', params),
        { allowSuspended: true },
      )
    } else {
      const body =
        typeof payload === 'string'
          ? payload
          : Buffer.isBuffer(payload)
            ? payload.toString('utf8')
            : payload == null
              ? ''
              : String(payload)
      await deps.orgTx(
        idem.orgId,
        (tx) =>
          tx.sql(
            'update idempotency_keys set status_code = ?, response_body = ?, content_type = ? where tenant_id = ?::uuid and principal = ? and key = ?',
            [
              reply.statusCode,
              // Stored responses can hold secrets shown once (a new API key): encrypted at rest.
              deps.secrets.seal(body, boxLabel(idem.orgId, idem.principal, idem.key)),
              String(reply.getHeader('content-type') ?? ''),
              ...params,
            ],
          ),
        { allowSuspended: true },
      )
    }
    return payload
  }
}

function boxLabel(orgId: string, principal: string, key: string): string {
  return `idempotency:${orgId}:${principal}:${key}`
}

function hashRequest(request: FastifyRequest): string {
  return createHash('sha256')
    .update(`${request.method} ${request.url}\n`)
    .update(canonicalize(request.body ?? null) ?? '')
    .digest('hex')
}
