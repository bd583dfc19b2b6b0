// Test support for the plugins' acceptance tests: people with a role of their own, signed in,
// and polling for what a workflow or an event handler does just after a request.
import type { DevKernel } from '@trellis/plugin-sdk'

// biome-ignore lint/suspicious/noExplicitAny: answers are read field by field in the tests
export type Reply = { status: number; body: any }
export type As = (method: string, path: string, body?: unknown) => Promise<Reply>

/** Requests as the holder of `token` (the tenant admin without one). */
export const asToken =
  (dev: DevKernel, token?: string): As =>
  (method, path, body) =>
    dev.request(method, path, {
      ...(token ? { token } : {}),
      ...(body === undefined ? {} : { body }),
    }) as Promise<Reply>

/** A new tenant role holding `permissions`, and a person with it, invited, accepted and signed in. */
export async function person(dev: DevKernel, role: string, permissions: string[]): Promise<As> {
  const admin = asToken(dev)
  const created = await admin('POST', '/v1/roles', { name: role, permissions })
  if (created.status !== 201) throw new Error(`role ${role}: ${created.status} ${JSON.stringify(created.body)}`)
  const email = `${role.replace(/_/g, '.')}@dev.test`
  const invited = await admin('POST', '/v1/invitations', { email, role })
  const password = `password-of-${role}`
  const acc = await dev.request('POST', '/v1/invitations/accept', {
    body: { token: invited.body.acceptToken, name: role, password },
    token: '',
  })
  if (acc.status !== 200) throw new Error(`accept ${email}: ${acc.status} ${JSON.stringify(acc.body)}`)
  const login = await dev.request('POST', '/v1/auth/login', { body: { email, password }, token: '' })
  return asToken(dev, (login.body as { accessToken: string }).accessToken)
}

/** Polls `check` until it answers something truthy (20 s at most): workflows and events run just after the request. */
export async function eventually<T>(check: () => Promise<T | undefined | null | false>, what: string): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await check()
    if (v) return v
    await new Promise((done) => setTimeout(done, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}
