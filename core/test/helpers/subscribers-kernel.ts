import type { Test } from 'tap'
import { startTestKernel, type DbKind } from './test-kernel.js'
import { startReceiver } from './receiver.js'
import { newWebhookSecret } from '../../src/events/signing.js'
import { webhookSecretAd } from '../../src/events/delivery-types.js'

/**
 * A kernel whose events reach a local receiver, for the tests of who subscribes (ADR 0082, 0105):
 * its subscriber index, a role write (whose event nobody wants unless a test subscribes to it),
 * and an endpoint written by "another process" — straight into the table, so this process's
 * index is never told of it.
 */
export async function startSubscribersKernel(t: Test, kind: DbKind) {
  const k = await startTestKernel(t, kind, {
    plugins: { sandboxWorkers: 1 },
    events: { egressAllow: ['127.0.0.1'], sweepMs: 200, staleMs: 2000 },
  })
  const receiver = await startReceiver()
  t.teardown(receiver.close)
  let n = 0
  const createRole = async (token: string) => {
    const r = await k.req('POST', '/v1/roles', {
      token,
      body: { name: `r${n++}-${kind}`, permissions: ['users.read'] },
    })
    if (r.status !== 201) throw new Error(`${r.status} ${JSON.stringify(r.body)}`)
    return r.body as { id: string; name: string }
  }
  const otherProcessEndpoint = async (orgId: string, types: string[], status = 'active') => {
    const id = crypto.randomUUID()
    await k.appSql(
      orgId,
      'insert into webhook_endpoints (id, url, types, status, secret_enc) values (?::uuid, ?, ?::text[], ?, ?)',
      [
        id,
        receiver.url,
        `{${types.join(',')}}`,
        status,
        k.kernel.ctx.secrets.seal(newWebhookSecret(), webhookSecretAd(id)),
      ],
    )
    return id
  }
  const deliveredRoles = () =>
    receiver.received.map((r) => (JSON.parse(r.body) as { data: { roleId?: string } }).data.roleId)
  return { k, receiver, index: k.kernel.ctx.events.subscriberIndex, createRole, otherProcessEndpoint, deliveredRoles }
}
