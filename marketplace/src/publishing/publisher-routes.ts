/**
 * Publishers: a partner claims scopes (`@acme`; nobody else may publish under it) and registers
 * the Ed25519 public keys its packages are signed with. Rotation is: register the new key,
 * publish with it, revoke the old one. Every change is audited in the partner's chain and
 * emits an event into its outbox.
 */
import { createPublicKey, type KeyObject } from 'node:crypto'
import { Type } from '@sinclair/typebox'
import { uuidv7 } from './ids.js'
import { keyFingerprint } from '@trellis/plugin-sdk'
import { MKT } from '../errors.js'
import { PUBLISH_LIMITS, RESERVED_SCOPES } from './limits.js'
import { publisherOf, SOURCE } from './publisher.js'
import { lookAlikeOf } from './confusables.js'
import { AUTH, KERNEL_PERMISSIONS as P, KRN, PLATFORM_ORG, auditMeta, principalOf, type Api } from '@trellis/core'
import type { Services } from '../services.js'

const Uuid = Type.String({ format: 'uuid' })
export const SCOPE_PATTERN = '^@[a-z0-9][a-z0-9-]*$'
const ScopeView = Type.Object({
  scope: Type.String(),
  partnerId: Uuid,
  createdAt: Type.String({ format: 'date-time' }),
})
const KeyView = Type.Object({
  id: Uuid,
  name: Type.String(),
  fingerprint: Type.String({
    description: '`SHA256:<base64>` of the raw Ed25519 public key, as `trellis-plugin keys generate` prints it.',
  }),
  publicKey: Type.String({ description: 'SPKI PEM.' }),
  status: Type.Union([Type.Literal('active'), Type.Literal('revoked')]),
  createdAt: Type.String({ format: 'date-time' }),
  revokedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
})

interface KeyRow {
  id: string
  name: string
  fingerprint: string
  public_key: string
  status: 'active' | 'revoked'
  created_at: Date
  revoked_at: Date | null
}
const keyView = (r: KeyRow) => ({
  id: r.id,
  name: r.name,
  fingerprint: r.fingerprint,
  publicKey: r.public_key,
  status: r.status,
  createdAt: new Date(r.created_at).toISOString(),
  revokedAt: r.revoked_at ? new Date(r.revoked_at).toISOString() : null,
})
const isUniqueViolation = (err: unknown) => (err as { code?: string })?.code === '23505'

/** An SPKI PEM Ed25519 public key, or MKT_ERR_KEY_INVALID. */
export function parsePublicKey(pem: string): KeyObject {
  const text = pem.trim()
  if (!/^-----BEGIN PUBLIC KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PUBLIC KEY-----$/.test(text))
    throw MKT.KEY_INVALID({
      reason: 'send the public key as SPKI PEM ("-----BEGIN PUBLIC KEY-----"), never a private key',
    })
  let key: KeyObject
  try {
    key = createPublicKey({ key: text, format: 'pem', type: 'spki' })
  } catch (err) {
    throw MKT.KEY_INVALID({ reason: (err as Error).message })
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw MKT.KEY_INVALID({ reason: `it is a ${key.asymmetricKeyType} key; only Ed25519 keys sign packages` })
  return key
}

export function registerPublisherRoutes(app: Api, k: Services): void {
  app.post(
    '/marketplace/scopes',
    {
      schema: {
        tags: ['marketplace'],
        summary: 'Claim a scope (@name) to publish plugins under; a platform admin may assign one to a partner',
        body: Type.Object(
          {
            scope: Type.String({ pattern: SCOPE_PATTERN, maxLength: 64 }),
            partnerId: Type.Optional(
              Type.String({ format: 'uuid', description: 'Platform admins only: the partner to assign the scope to.' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 201: ScopeView },
      },
    },
    async (request, reply) => {
      const caller = principalOf(request)
      const { scope } = request.body
      let partnerId: string
      if (caller.orgKind === 'platform' && caller.orgId === PLATFORM_ORG) {
        if (!caller.permissions.has(P.platformAdmin)) throw AUTH.FORBIDDEN({ permission: P.platformAdmin })
        if (!request.body.partnerId)
          throw KRN.VALIDATION_FAILED({ reason: 'name the partner the scope is for with partnerId' })
        partnerId = request.body.partnerId
      } else {
        const p = publisherOf(request)
        if (request.body.partnerId && request.body.partnerId !== p.orgId)
          throw KRN.VALIDATION_FAILED({ reason: 'partnerId is for platform admins' })
        if (RESERVED_SCOPES.includes(scope)) throw MKT.SCOPE_RESERVED({ scope })
        partnerId = p.orgId
      }
      const meta = auditMeta(request)
      const row = await k.tx.run(caller.orgId, async (tx) => {
        if (caller.orgId === PLATFORM_ORG) {
          const partner = await k.organisations.get(tx, partnerId)
          if (partner?.kind !== 'partner') throw KRN.NOT_FOUND({ what: 'partner' })
        }
        const [taken] = await tx.sql('select partner_id from marketplace_scopes where scope = ?', [scope])
        if (taken) throw MKT.SCOPE_TAKEN({ scope })
        // A look-alike of a reserved name (partners only: the platform assigns those) or of a
        // scope already claimed is refused; concurrent claims are serialised so two look-alikes
        // cannot both pass.
        await tx.sql('select pg_advisory_xact_lock(hashtext(?))', ['marketplace.scopes'])
        const existing = (await tx.sql<{ scope: string }>('select scope from marketplace_scopes')).map((r) => r.scope)
        const lookAlike = lookAlikeOf(scope, existing, { reserved: caller.orgId !== PLATFORM_ORG })
        if (lookAlike) throw MKT.SCOPE_CONFUSABLE({ scope, imitates: lookAlike.imitates })
        let created: { scope: string; partner_id: string; created_at: Date }
        try {
          ;[created] = (await tx.sql<{ scope: string; partner_id: string; created_at: Date }>(
            'insert into marketplace_scopes (scope, partner_id) values (?, ?::uuid) returning scope, partner_id, created_at',
            [scope, partnerId],
          )) as [typeof created]
        } catch (err) {
          if (isUniqueViolation(err)) throw MKT.SCOPE_TAKEN({ scope })
          throw err
        }
        const data = { scope, partnerId }
        await k.audit.append(tx, caller.orgId, {
          ...meta,
          action: 'marketplace.scope.claimed',
          target: { kind: 'marketplace_scope', id: scope },
          data,
        })
        await k.events.emit(tx, {
          type: 'marketplace.scope.claimed',
          subject: `marketplace_scope/${scope}`,
          data,
          source: SOURCE,
        })
        if (partnerId !== caller.orgId) {
          await tx.useOrg(partnerId)
          await k.audit.append(tx, partnerId, {
            ...meta,
            action: 'marketplace.scope.claimed',
            target: { kind: 'marketplace_scope', id: scope },
            data,
          })
          await k.events.emit(tx, {
            type: 'marketplace.scope.claimed',
            subject: `marketplace_scope/${scope}`,
            data,
            source: SOURCE,
          })
          await tx.useOrg(caller.orgId)
        }
        return created
      })
      reply.code(201)
      return { scope: row.scope, partnerId: row.partner_id, createdAt: new Date(row.created_at).toISOString() }
    },
  )

  app.get(
    '/marketplace/scopes',
    {
      schema: {
        tags: ['marketplace'],
        summary: "Scopes: a partner's own; every scope for platform admins",
        response: { 200: Type.Object({ items: Type.Array(ScopeView) }) },
      },
    },
    async (request) => {
      const caller = principalOf(request)
      const all =
        caller.orgKind === 'platform' && caller.orgId === PLATFORM_ORG && caller.permissions.has(P.platformAdmin)
      if (!all) publisherOf(request)
      const rows = await k.tx.read(caller.orgId, (tx) =>
        tx.sql<{ scope: string; partner_id: string; created_at: Date }>(
          'select scope, partner_id, created_at from marketplace_scopes where (?::boolean or partner_id = ?::uuid) order by scope limit 1000',
          [all, caller.orgId],
        ),
      )
      return {
        items: rows.map((r) => ({
          scope: r.scope,
          partnerId: r.partner_id,
          createdAt: new Date(r.created_at).toISOString(),
        })),
      }
    },
  )

  app.post(
    '/marketplace/keys',
    {
      schema: {
        tags: ['marketplace'],
        summary:
          'Register an Ed25519 public key that signs your packages (rotate: register the new key, then revoke the old)',
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 100 }),
            publicKey: Type.String({
              minLength: 1,
              maxLength: 2000,
              description: 'SPKI PEM, e.g. signing-key.pub.pem from `trellis-plugin keys generate`.',
            }),
          },
          { additionalProperties: false },
        ),
        response: { 201: KeyView },
      },
    },
    async (request, reply) => {
      const p = publisherOf(request)
      const key = parsePublicKey(request.body.publicKey)
      const fingerprint = keyFingerprint(key)
      const pem = key.export({ format: 'pem', type: 'spki' }).toString()
      const meta = auditMeta(request)
      const row = await k.tx.run(p.orgId, async (tx) => {
        const [{ n }] = (await tx.sql<{ n: number }>(
          `select count(*)::int as n from marketplace_keys where partner_id = ?::uuid and status = 'active'`,
          [p.orgId],
        )) as [{ n: number }]
        if (n >= PUBLISH_LIMITS.activeKeys) throw MKT.KEY_LIMIT({ limit: PUBLISH_LIMITS.activeKeys })
        const [exists] = await tx.sql('select id from marketplace_keys where fingerprint = ?', [fingerprint])
        if (exists) throw MKT.KEY_EXISTS({ fingerprint })
        let created: KeyRow
        try {
          ;[created] = (await tx.sql<KeyRow>(
            'insert into marketplace_keys (id, partner_id, name, public_key, fingerprint) values (?::uuid, ?::uuid, ?, ?, ?) returning id, name, fingerprint, public_key, status, created_at, revoked_at',
            [uuidv7(), p.orgId, request.body.name, pem, fingerprint],
          )) as [KeyRow]
        } catch (err) {
          if (isUniqueViolation(err)) throw MKT.KEY_EXISTS({ fingerprint })
          throw err
        }
        const data = { keyId: created.id, name: created.name, fingerprint }
        await k.audit.append(tx, p.orgId, {
          ...meta,
          action: 'marketplace.key.registered',
          target: { kind: 'marketplace_key', id: created.id },
          data,
        })
        await k.events.emit(tx, {
          type: 'marketplace.key.registered',
          subject: `marketplace_key/${created.id}`,
          data,
          source: SOURCE,
        })
        return created
      })
      reply.code(201)
      return keyView(row)
    },
  )

  app.get(
    '/marketplace/keys',
    {
      schema: {
        tags: ['marketplace'],
        summary: "Your organisation's signing keys, active and revoked",
        response: { 200: Type.Object({ items: Type.Array(KeyView) }) },
      },
    },
    async (request) => {
      const p = publisherOf(request)
      const rows = await k.tx.read(p.orgId, (tx) =>
        tx.sql<KeyRow>(
          'select id, name, fingerprint, public_key, status, created_at, revoked_at from marketplace_keys where partner_id = ?::uuid order by created_at, id',
          [p.orgId],
        ),
      )
      return { items: rows.map(keyView) }
    },
  )

  app.post(
    '/marketplace/keys/:id/revoke',
    {
      schema: {
        tags: ['marketplace'],
        summary:
          'Revoke a signing key: packages signed with it can no longer be published (versions already published keep their review)',
        params: Type.Object({ id: Uuid }),
        response: { 200: KeyView },
      },
    },
    async (request) => {
      const p = publisherOf(request)
      const meta = auditMeta(request)
      const row = await k.tx.run(p.orgId, async (tx) => {
        const [current] = await tx.sql<KeyRow>(
          'select id, name, fingerprint, public_key, status, created_at, revoked_at from marketplace_keys where id = ?::uuid and partner_id = ?::uuid',
          [request.params.id, p.orgId],
        )
        if (!current) throw MKT.KEY_NOT_FOUND()
        if (current.status === 'revoked') return current
        const [revoked] = (await tx.sql<KeyRow>(
          `update marketplace_keys set status = 'revoked', revoked_at = now() where id = ?::uuid and partner_id = ?::uuid returning id, name, fingerprint, public_key, status, created_at, revoked_at`,
          [request.params.id, p.orgId],
        )) as [KeyRow]
        const data = { keyId: revoked.id, name: revoked.name, fingerprint: revoked.fingerprint }
        await k.audit.append(tx, p.orgId, {
          ...meta,
          action: 'marketplace.key.revoked',
          target: { kind: 'marketplace_key', id: revoked.id },
          data,
        })
        await k.events.emit(tx, {
          type: 'marketplace.key.revoked',
          subject: `marketplace_key/${revoked.id}`,
          data,
          source: SOURCE,
        })
        return revoked
      })
      return keyView(row)
    },
  )
}
