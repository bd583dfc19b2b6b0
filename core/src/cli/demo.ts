import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Kernel } from '../kernel.js'
import type { DemoAccount } from '../bootstrap.js'
import { generatePassword } from '../bootstrap.js'
import type { DemoResult } from '../extension-api/define.js'
import { DEMO_REQUEST_ID_PREFIX } from './terminal-log.js'
import { hashPassword } from '../identity/passwords.js'
import { orgTx } from '../kernel-context.js'

/**
 * The demo password: TRELLIS_DEMO_PASSWORD when set, else the one an earlier `--demo` start
 * kept in the data directory (readable by its owner only), else a new one, kept there — so a
 * second start prints the same password and a tour's `$PW` stays good.
 */
export function demoPassword(dataDir: string): string {
  const file = join(dataDir, 'demo-password')
  const chosen = process.env.TRELLIS_DEMO_PASSWORD
  if (!chosen && existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim()
    if (kept) return kept
  }
  const password = chosen ?? generatePassword()
  mkdirSync(dataDir, { recursive: true })
  writeFileSync(file, `${password}\n`, { mode: 0o600 })
  return password
}

/**
 * After the demo partner, tenant and accounts exist, the extensions' demo seeders add their part,
 * in extension order (the composition root's: the first-party plugins, then the Northwind data).
 * Their requests to the API carry request ids a terminal keeps out of the log below warnings.
 */
export async function runDemoSeeders(
  kernel: Kernel,
  demo: { tenantId: string; partnerId: string; accounts: DemoAccount[] },
  log: (line: string) => void,
  progress?: (done: number, total: number) => void,
): Promise<Required<DemoResult>> {
  const admin = demo.accounts.find((a) => a.role === 'tenant_admin')!
  let sent = 0
  const request = async (method: string, path: string, body?: unknown, token?: string) => {
    const res = await kernel.app.inject({
      method: method as 'GET',
      url: path,
      headers: {
        'x-request-id': `${DEMO_REQUEST_ID_PREFIX}${++sent}`,
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    })
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : null }
  }
  const out: Required<DemoResult> = { accounts: [], notes: [] }
  for (const seed of kernel.contributions.demo) {
    const r = await seed({
      tenantId: demo.tenantId,
      partnerId: demo.partnerId,
      adminEmail: admin.email,
      password: admin.password,
      log,
      request,
      ...(progress ? { progress } : {}),
    })
    out.accounts.push(...(r?.accounts ?? []))
    out.notes.push(...(r?.notes ?? []))
  }
  // Every start prints one password for every demo account: the seeders' accounts get it again too.
  if (out.accounts.length) {
    const hash = await hashPassword(admin.password)
    await orgTx(kernel.ctx, demo.tenantId, (tx) =>
      tx.sql(`update users set password_hash = ? where lower(email) = any(?::text[])`, [
        hash,
        out.accounts.map((a) => a.email.toLowerCase()),
      ]),
    )
  }
  return out
}
