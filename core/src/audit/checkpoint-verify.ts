import { readFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { JWK } from 'jose'
import type { Database } from '../db/database.js'
import { KRN } from '../errors.js'
import { verifyCheckpoint, type Checkpoint, type CheckpointClaim } from './checkpoint-signing.js'
import type { ChainReport } from './verify.js'

/** A checkpoint as read from a file, with where it was found. */
export interface StoredCheckpoint {
  where: string
  checkpoint: Partial<Checkpoint>
}

/** Why a chain does not match a signed checkpoint, or why a checkpoint is not trusted. */
export interface CheckpointProblem {
  where: string
  tenantId: string | null
  seq: string | null
  at: string | null
  kid: string | null
  reason: string
}

/**
 * Reads checkpoints from a JSON-lines file, or from every `*.jsonl` file in a directory (the
 * layout TRELLIS_AUDIT_CHECKPOINT_DIR is written in). A line that is not JSON is a problem of
 * the file, reported with the others, not a reason to stop.
 */
export async function readCheckpoints(
  path: string,
): Promise<{ checkpoints: StoredCheckpoint[]; unreadable: CheckpointProblem[] }> {
  let files: string[]
  try {
    files = (await stat(path)).isDirectory()
      ? (await readdir(path))
          .filter((f) => f.endsWith('.jsonl'))
          .sort()
          .map((f) => join(path, f))
      : [path]
  } catch (err) {
    throw KRN.AUDIT_CHECKPOINTS_UNREADABLE({
      path,
      reason: (err as NodeJS.ErrnoException).code ?? (err as Error).message,
    })
  }
  const checkpoints: StoredCheckpoint[] = []
  const unreadable: CheckpointProblem[] = []
  for (const file of files) {
    const lines = (await readFile(file, 'utf8')).split('\n')
    lines.forEach((line, i) => {
      if (!line.trim()) return
      const where = `${file}:${i + 1}`
      try {
        const parsed = JSON.parse(line) as unknown
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object')
        checkpoints.push({ where, checkpoint: parsed as Partial<Checkpoint> })
      } catch {
        unreadable.push({
          where,
          tenantId: null,
          seq: null,
          at: null,
          kid: null,
          reason: 'not a checkpoint (a line of JSON) at all',
        })
      }
    })
  }
  return { checkpoints, unreadable }
}

/** Checkpoints whose signature holds, grouped by organisation; the others as problems. */
export async function trustedCheckpoints(
  stored: StoredCheckpoint[],
  keys: Map<string, JWK>,
): Promise<{
  byOrg: Map<string, Array<{ where: string; claim: CheckpointClaim; kid: string }>>
  forged: CheckpointProblem[]
}> {
  const byOrg = new Map<string, Array<{ where: string; claim: CheckpointClaim; kid: string }>>()
  const forged: CheckpointProblem[] = []
  for (const { where, checkpoint: cp } of stored) {
    const v = await verifyCheckpoint(cp, keys)
    const str = (x: unknown) => (typeof x === 'string' ? x : null)
    if (!v.ok) {
      forged.push({
        where,
        tenantId: str(cp.tenantId),
        seq: str(cp.seq),
        at: str(cp.at),
        kid: str(cp.kid),
        reason: v.reason,
      })
      continue
    }
    let list = byOrg.get(v.claim.tenantId)
    if (!list) byOrg.set(v.claim.tenantId, (list = []))
    list.push({ where, claim: v.claim, kid: cp.kid! })
  }
  return { byOrg, forged }
}

/**
 * Holds a verified chain against an organisation's signed checkpoints: the chain must reach
 * each checkpoint's entry, and that entry must have the hash the checkpoint signed (the chain
 * links every earlier entry into it). Returns one problem per checkpoint it does not meet.
 */
export async function checkAgainstCheckpoints(
  db: Database,
  report: ChainReport,
  checkpoints: Array<{ where: string; claim: CheckpointClaim; kid: string }>,
): Promise<CheckpointProblem[]> {
  if (checkpoints.length === 0) return []
  const head = report.head ? BigInt(report.head.seq) : 0n
  const seqs = [...new Set(checkpoints.map((c) => c.claim.seq))]
  const rows = await db.inOrg(
    report.tenantId,
    (tx) =>
      tx.sql<{ seq: string; hash: string | null }>(
        'select seq::text as seq, hash from audit_log where tenant_id = ?::uuid and seq = any(?::bigint[])',
        [report.tenantId, `{${seqs.join(',')}}`],
      ),
    'trellis_auditor',
  )
  const hashAt = new Map(rows.map((r) => [r.seq, r.hash]))
  const problems: CheckpointProblem[] = []
  for (const { where, claim, kid } of checkpoints.sort((a, b) =>
    BigInt(a.claim.seq) < BigInt(b.claim.seq) ? -1 : 1,
  )) {
    const problem = (reason: string) =>
      problems.push({ where, tenantId: claim.tenantId, seq: claim.seq, at: claim.at, kid, reason })
    if (BigInt(claim.seq) > head)
      problem(
        `the chain ends at entry ${head} but the checkpoint of ${claim.at} saw entry ${claim.seq}: the newest entries were deleted`,
      )
    else if (hashAt.get(claim.seq) !== claim.hash)
      problem(`entry ${claim.seq} has another hash than the checkpoint of ${claim.at} signed: the chain was rewritten`)
  }
  return problems
}
