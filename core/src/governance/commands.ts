// What `trellis evidence create|verify` and `trellis export` do (core/src/cli/governance-commands.ts
// declares them): the same services as the HTTP routes, on a database connection of their own,
// acting as the system (audited as such).
import { readFile, writeFile } from 'node:fs/promises'
import type { KernelConfig } from '../config.js'
import { openMigratedDatabase } from '../cli/open-database.js'
import { type Database, PLATFORM_ORG } from '../db/database.js'
import { AuditSealer } from '../audit/sealer.js'
import { appendAudit } from '../audit/audit-log.js'
import { checkpointKeys } from '../audit/checkpoint-signing.js'
import { SigningKeys } from '../identity/signing-keys.js'
import { SecretBox } from '../crypto/secret-box.js'
import type { OrgTx } from '../http/route-deps.js'
import { type CliIo, lineTo } from '../cli/io.js'
import { evidencePeriod, signedEvidence } from './evidence-routes.js'
import { verifyEvidence } from './evidence-signing.js'
import { exportedAuditData, exportTenant } from './export.js'
import { ProtectedFields } from './protected-fields.js'
import { keyringFor } from './tenant-keys.js'

const SYSTEM = { actor: { kind: 'system' as const, id: 'cli' } }

async function withDatabase<T>(
  config: KernelConfig,
  fn: (db: Database, orgTx: OrgTx, sealer: AuditSealer) => Promise<T>,
) {
  const db = await openMigratedDatabase(config)
  const sealer = new AuditSealer(db)
  const orgTx: OrgTx = async (org, f) => {
    const r = await db.inOrg(org, (tx) => f(tx))
    await sealer.sealTenant(org)
    return r
  }
  try {
    return await fn(db, orgTx, sealer)
  } finally {
    await db.close()
  }
}

/** `trellis evidence create`: 0 when written. */
export async function runEvidenceCreate(
  config: KernelConfig,
  opts: { tenant?: string; from?: string; to?: string; out?: string },
  io: CliIo,
): Promise<number> {
  return withDatabase(config, async (db, orgTx, sealer) => {
    const keys = new SigningKeys(db, new SecretBox(config.secretKey))
    await keys.load()
    const org = opts.tenant ?? PLATFORM_ORG
    const signed = await signedEvidence(
      {
        orgTx,
        db,
        config,
        keys,
        sealAudit: async (o) => {
          await sealer.sealTenant(o)
        },
        now: () => Date.now(),
      },
      org,
      evidencePeriod(opts, Date.now()),
      { ...SYSTEM, action: 'governance.evidence.generated', target: { kind: 'organisation', id: org } },
    )
    const text = `${JSON.stringify(signed, null, 2)}\n`
    if (opts.out) {
      await writeFile(opts.out, text)
      lineTo(io)(
        `signed  ${org === PLATFORM_ORG ? 'platform' : org}  sha256 ${signed.signature.sha256}  key ${signed.signature.kid}  → ${opts.out}`,
      )
    } else io.stdout(text)
    return 0
  })
}

/** `trellis evidence verify <file>`: 0 when the pack verifies, 1 when it does not. */
export async function runEvidenceVerify(
  config: KernelConfig,
  file: string,
  opts: { json?: boolean },
  io: CliIo,
): Promise<number> {
  let input: unknown
  try {
    input = JSON.parse(await readFile(file, 'utf8'))
  } catch (err) {
    input = undefined
    io.stderr(`trellis: ${file}: ${(err as Error).message}\n`)
  }
  return withDatabase(config, async (db) => {
    const verdict = await verifyEvidence(input, await checkpointKeys(db))
    if (opts.json) lineTo(io)(JSON.stringify(verdict))
    else if (verdict.valid)
      lineTo(io)(
        `ok      ${verdict.scope}  generated ${verdict.generatedAt}  sha256 ${verdict.sha256}  key ${verdict.kid}`,
      )
    else lineTo(io)(`INVALID  ${verdict.reason}`)
    return verdict.valid ? 0 : 1
  })
}

/** `trellis export`: 0 when the archive is written. */
export async function runExport(
  config: KernelConfig,
  opts: { tenant: string; out: string },
  io: CliIo,
): Promise<number> {
  return withDatabase(config, async (_db, orgTx, sealer) => {
    await sealer.sealTenant(opts.tenant)
    const keyring = keyringFor(config.secretKey)
    const archive = await orgTx(opts.tenant, async (tx) => {
      const a = await exportTenant(tx, opts.tenant, {
        fields: new ProtectedFields(keyring),
        secretsSealedBy: keyring.platformKeyId,
      })
      await appendAudit(tx, opts.tenant, {
        ...SYSTEM,
        action: 'governance.tenant.exported',
        target: { kind: 'tenant', id: opts.tenant },
        data: exportedAuditData(a),
      })
      return a
    })
    await writeFile(opts.out, archive.text)
    const counts = Object.entries(archive.manifest.sections)
      .map(([k, v]) => `${v.count} ${k}`)
      .join(', ')
    lineTo(io)(`exported  ${archive.manifest.tenant.slug}  ${counts}  sha256 ${archive.sha256}  → ${opts.out}`)
    return 0
  })
}
