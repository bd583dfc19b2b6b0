import { createKernel } from '../kernel.js'
import type { KernelConfig } from '../config.js'
import { KRN } from '../errors.js'
import { Database, PLATFORM_ORG } from '../db/database.js'
import { createPlatformAdmin, hasPlatformAdmin, seedDemo, assertEmail } from '../bootstrap.js'
import { verifyChain, auditedOrganisations } from '../audit/verify.js'
import { AuditSealer } from '../audit/sealer.js'
import { AuditCheckpointer } from '../audit/checkpoints.js'
import { checkpointKeys } from '../audit/checkpoint-signing.js'
import { checkAgainstCheckpoints, readCheckpoints, trustedCheckpoints } from '../audit/checkpoint-verify.js'
import { SigningKeys } from '../identity/signing-keys.js'
import { SecretBox } from '../crypto/secret-box.js'
import { demoPassword, runDemoSeeders } from './demo.js'
import { createTerminal } from './terminal-log.js'
import type { Extension } from '../extension-api/define.js'
import { createLogger } from '../observability/logger.js'
import { preflight, portInUse } from './preflight.js'
import { checkDatabases, openMigratedDatabase } from './open-database.js'
import { confirmRevert } from './confirm.js'
import { embeddedTemplateOption } from './embedded-template-option.js'
import { type CliIo, lineTo, processIo } from './io.js'

/** `start` speaks to the process's own streams (it keeps running, and logs there). */
const out = lineTo(processIo)

export async function runStart(
  config: KernelConfig,
  opts: { demo?: boolean; migrate?: boolean; json?: boolean; checked?: boolean },
  extensions: Extension[],
  stopTelemetry?: () => Promise<void>,
): Promise<void> {
  // In a terminal: readable log lines and the demo load's progress; JSON lines otherwise. With
  // --json, stdout carries only the one JSON line saying what started; logs and progress go to stderr.
  const terminal = !opts.json && process.stdout.isTTY ? createTerminal(process.stdout) : undefined
  const logTo = terminal ? (terminal as unknown as NodeJS.WritableStream) : opts.json ? process.stderr : undefined
  const note = (line: string) =>
    terminal ? terminal.line(line) : opts.json ? process.stderr.write(`${line}\n`) : out(line)
  // The database, Redis and the port answer (the CLI may have checked them before loading this).
  if (!opts.checked) await preflight(config)
  const kernel = await createKernel({
    config,
    migrate: opts.migrate,
    ...(await embeddedTemplateOption(config)),
    extensions,
    ...(logTo ? { logger: createLogger(config.logLevel, logTo) } : {}),
  })
  const { ctx } = kernel
  let firstAdmin: { email: string; password?: string } | undefined
  // Only the embedded default and API processes create the first admin (a worker serves no sign-in).
  if (kernel.role !== 'worker' && !(await hasPlatformAdmin(ctx))) {
    firstAdmin = await createPlatformAdmin(ctx, {
      email: process.env.TRELLIS_ADMIN_EMAIL ?? 'admin@trellis.local',
      password: process.env.TRELLIS_ADMIN_PASSWORD,
    })
  }
  const demo = opts.demo ? await seedDemo(ctx, { password: demoPassword(config.dataDir) }) : undefined
  const seeded = demo
    ? await runDemoSeeders(
        kernel,
        demo,
        (line) => note(`  ${line}`),
        terminal ? terminal.progress('  loading orders') : undefined,
      )
    : undefined
  terminal?.done()
  const url = (
    await kernel.listen().catch(async (err: NodeJS.ErrnoException) => {
      await kernel.close()
      throw err.code === 'EADDRINUSE' ? portInUse(config.port, config.host) : err
    })
  ).replace('[::1]', 'localhost')
  const hasConsole = kernel.app.hasRoute({ method: 'GET', url: '/console/*' })
  if (opts.json) {
    const password = demo?.accounts[0]?.password
    out(
      JSON.stringify({
        url,
        role: kernel.role,
        docs: kernel.role === 'worker' ? null : `${url}/docs`,
        console: hasConsole ? `${url}/console/` : null,
        database: ctx.db.embedded ? { kind: 'embedded', dataDir: config.dataDir } : { kind: 'postgresql' },
        admin: firstAdmin ? { email: firstAdmin.email, password: firstAdmin.password ?? null } : null,
        demo: demo
          ? {
              accounts: [...demo.accounts, ...(seeded?.accounts ?? []).map((a) => ({ ...a, password }))].map((a) => ({
                role: a.role,
                email: a.email,
                password: a.password,
                org: a.org,
              })),
              notes: seeded?.notes ?? [],
            }
          : null,
      }),
    )
  }
  const stop = async () => {
    await kernel.close()
    await stopTelemetry?.()
    process.exit(0)
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  if (!opts.json) printStarted(url, kernel.role, hasConsole, config, ctx.db.embedded, firstAdmin, demo, seeded)
}

/** What `trellis start` prints once it listens: where, the first admin's sign-in, the demo accounts. */
function printStarted(
  url: string,
  role: string,
  hasConsole: boolean,
  config: KernelConfig,
  embedded: boolean,
  firstAdmin: { email: string; password?: string } | undefined,
  demo: Awaited<ReturnType<typeof seedDemo>> | undefined,
  seeded: Awaited<ReturnType<typeof runDemoSeeders>> | undefined,
): void {
  out()
  if (role === 'worker') {
    out(`Trellis worker running; health and metrics at ${url}/readyz and ${url}/metrics`)
    return
  }
  out(`Trellis is running at ${url}  (API docs: ${url}/docs)${role === 'api' ? '  [role: api]' : ''}`)
  // The composition root mounts the console; the kernel alone has none.
  if (hasConsole) out(`Console: ${url}/console/`)
  out(`Database: ${embedded ? `embedded PostgreSQL (PGlite) in ${config.dataDir}` : 'PostgreSQL from DATABASE_URL'}`)
  if (firstAdmin) {
    out()
    out('A platform admin was created. Sign in with:')
    out(`  email:    ${firstAdmin.email}`)
    out(`  password: ${firstAdmin.password ?? '(the TRELLIS_ADMIN_PASSWORD you set)'}`)
    if (firstAdmin.password) out('  (shown only this once)')
  }
  if (demo) {
    out()
    out('Demo: partner "Northwind Partners" manages tenant "Northwind Traders". Accounts:')
    const password = demo.accounts[0]!.password
    for (const a of [...demo.accounts, ...(seeded?.accounts ?? []).map((a) => ({ ...a, password }))])
      out(`  ${a.role.padEnd(18)} ${a.email.padEnd(36)} ${a.password}   (${a.org})`)
    for (const note of seeded?.notes ?? []) out(`  ${note}`)
  }
  out()
  out('Sign in:')
  out(`  curl -s -X POST ${url}/v1/auth/login -H 'content-type: application/json' \\`)
  out(
    `       -d '{"email":"${demo?.accounts[2]?.email ?? firstAdmin?.email ?? 'admin@trellis.local'}","password":"…"}'`,
  )
  out(`then send the accessToken as "Authorization: Bearer <token>", e.g. to ${url}/v1/me`)
  out()
}

/** `trellis migrate`; resolves to the exit code (1 when the revert was declined). */
export async function runMigrate(
  config: KernelConfig,
  direction: 'up' | 'down' | 'status',
  opts: { to?: string; yes?: boolean; json?: boolean } = {},
  io: CliIo = processIo,
): Promise<number> {
  const out = lineTo(io)
  await checkDatabases(config)
  const db = await Database.open(config)
  try {
    const { executed, pending } = await db.migrationStatus()
    if (direction === 'status') {
      if (opts.json) {
        out(JSON.stringify({ applied: executed, pending }, null, 2))
        return 0
      }
      for (const m of executed) out(`applied  ${m}`)
      for (const m of pending) out(`pending  ${m}`)
      if (executed.length + pending.length === 0) out('no migrations')
      return 0
    }
    if (direction === 'down') {
      // What `down` undoes: the latest migration, or every one back to (and including) --to.
      const from = opts.to ? executed.indexOf(opts.to) : executed.length - 1
      const undo = from < 0 ? [] : executed.slice(from).reverse()
      if (opts.to && from < 0)
        throw KRN.CONFIG_INVALID({ variable: '--to', reason: `${opts.to} is not an applied migration` })
      if (undo.length && !(await confirmRevert(undo, { yes: opts.yes, json: opts.json }, io))) return 1
    }
    const done = await db.migrate(direction, opts.to)
    const verb = direction === 'up' ? 'applied' : 'reverted'
    if (opts.json) out(JSON.stringify({ [verb]: done }, null, 2))
    else out(done.length ? done.map((m) => `${verb} ${m}`).join('\n') : 'nothing to do')
    return 0
  } finally {
    await db.close()
  }
}

export async function runAdminCreate(
  config: KernelConfig,
  opts: { email: string; name: string; json?: boolean },
  io: CliIo = processIo,
): Promise<void> {
  const out = lineTo(io)
  assertEmail(opts.email)
  // stdout carries the command's answer only; the kernel's log lines (a slow close's warning) go to stderr.
  const kernel = await createKernel({
    config,
    ...(await embeddedTemplateOption(config)),
    logger: createLogger(config.logLevel, { write: (line: string) => io.stderr(line) } as NodeJS.WritableStream),
  })
  try {
    const created = await createPlatformAdmin(kernel.ctx, {
      email: opts.email,
      name: opts.name,
      password: process.env.TRELLIS_ADMIN_PASSWORD,
    })
    if (opts.json) out(JSON.stringify({ email: created.email, password: created.password ?? null }, null, 2))
    else {
      out(`platform admin ${created.email} is ready`)
      if (created.password) out(`password: ${created.password}   (shown only this once)`)
    }
  } finally {
    await kernel.close()
  }
}

export async function runAuditVerify(
  config: KernelConfig,
  opts: { tenant?: string; json?: boolean; checkpoints?: string },
  io: CliIo = processIo,
): Promise<number> {
  const out = lineTo(io)
  const db = await openMigratedDatabase(config)
  let broken = 0
  try {
    // Read the checkpoints first: a path that cannot be read is an error before any work.
    const stored = opts.checkpoints ? await readCheckpoints(opts.checkpoints) : undefined
    // Seal what is committed but not sealed yet, so the check covers every entry.
    await new AuditSealer(db).sealAll()
    const trusted = stored ? await trustedCheckpoints(stored.checkpoints, await checkpointKeys(db)) : undefined
    const orgs = opts.tenant
      ? [opts.tenant]
      : [...new Set([...(await auditedOrganisations(db)), ...(trusted?.byOrg.keys() ?? [])])].sort()
    const reports = []
    const nameOf = (org: string | null) => (org === PLATFORM_ORG ? 'platform' : (org ?? '(no organisation)'))
    for (const org of orgs) {
      const r = await verifyChain(db, org)
      // A broken chain is reported as such; a whole one must also meet every signed checkpoint.
      const checkpoints = trusted?.byOrg.get(org) ?? []
      const problems = r.ok ? await checkAgainstCheckpoints(db, r, checkpoints) : []
      reports.push({
        ...r,
        ...(trusted ? { checkpoints: { checked: checkpoints.length, problems } } : {}),
        ok: r.ok && problems.length === 0,
      })
      if (!r.ok || problems.length) broken++
      if (!opts.json) {
        if (!r.ok) out(`BROKEN  ${nameOf(org)}  at entry ${r.brokenAt!.seq} (${r.brokenAt!.id}): ${r.brokenAt!.reason}`)
        else if (problems.length)
          for (const p of problems)
            out(
              `BROKEN  ${nameOf(org)}  against checkpoint ${p.seq} of ${p.at} (key ${p.kid}, ${p.where}): ${p.reason}`,
            )
        else
          out(
            `ok      ${nameOf(org)}  ${r.entries} entries${r.head ? `, head ${r.head.seq}:${r.head.hash}` : ''}${trusted ? `, ${checkpoints.length} checkpoints met` : ''}`,
          )
      }
    }
    // Checkpoints that cannot be trusted: forged, altered, signed by an unknown key, or not checkpoints at all.
    const untrusted = [...(stored?.unreadable ?? []), ...(trusted?.forged ?? [])].filter(
      (p) => !opts.tenant || p.tenantId === opts.tenant || p.tenantId === null,
    )
    if (untrusted.length) broken++
    if (opts.json)
      out(JSON.stringify(trusted ? { chains: reports, untrustedCheckpoints: untrusted } : reports, null, 2))
    else
      for (const p of untrusted)
        out(`FORGED  ${nameOf(p.tenantId)}  checkpoint ${p.seq ?? '?'} (${p.where}): ${p.reason}`)
  } finally {
    await db.close()
  }
  return broken ? 1 : 0
}

export async function runAuditCheckpoint(
  config: KernelConfig,
  opts: { tenant?: string; json?: boolean },
  io: CliIo = processIo,
): Promise<void> {
  const out = lineTo(io)
  const db = await openMigratedDatabase(config)
  try {
    const keys = new SigningKeys(db, new SecretBox(config.secretKey))
    await keys.load()
    const sealer = new AuditSealer(db)
    if (opts.tenant) await sealer.sealTenant(opts.tenant)
    else await sealer.sealAll()
    // The event goes into the outbox; a running kernel's dispatcher delivers it.
    const made = await new AuditCheckpointer({ db, keys, dir: config.auditCheckpointDir }).checkpointAll({
      orgs: opts.tenant ? [opts.tenant] : undefined,
      force: true,
    })
    if (opts.json) out(JSON.stringify(made, null, 2))
    else {
      for (const cp of made)
        out(
          `signed  ${cp.tenantId === PLATFORM_ORG ? 'platform' : cp.tenantId}  head ${cp.seq}:${cp.hash}  key ${cp.kid}`,
        )
      out(
        config.auditCheckpointDir
          ? `appended to ${config.auditCheckpointDir}`
          : 'published as kernel.audit.checkpoint events (set TRELLIS_AUDIT_CHECKPOINT_DIR to also write files)',
      )
    }
  } finally {
    await db.close()
  }
}

export async function runKeysRotate(
  config: KernelConfig,
  opts: { json?: boolean } = {},
  io: CliIo = processIo,
): Promise<void> {
  const out = lineTo(io)
  const db = await openMigratedDatabase(config)
  try {
    const kid = await new SigningKeys(db, new SecretBox(config.secretKey)).rotate()
    out(opts.json ? JSON.stringify({ kid }, null, 2) : `now signing with ${kid}`)
  } finally {
    await db.close()
  }
}
