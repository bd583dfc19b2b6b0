import { isTrellisError } from '@trellis/plugin-sdk'
import type { Logger } from 'pino'
import type { TenantTx } from './tenant-tx.js'
import { appendAudit } from '../audit/audit-log.js'
import type { Caller, InvocationTree } from './host-calls.js'

/**
 * A lost worker fails every invocation it was running; the sandbox marks those that were only
 * bystanders (not the one that killed it) `retryable`, and the culprit's `retryable: false`.
 * Without a marker, a lost worker counts as retryable: the invocation runs again once.
 */
export function retryable(err: unknown): boolean {
  if (!isTrellisError(err) || err.code !== 'SBX_ERR_WORKER_LOST') return false
  const marker =
    (err as { retryable?: boolean }).retryable ?? (err.details as { retryable?: boolean } | null | undefined)?.retryable
  return marker !== false
}

/**
 * Writes an invocation's refusals — aggregated, one entry per (plugin, op, target, reason) with
 * a count — in their own transaction, so they survive the invocation's rollback. Takes them out
 * of `denials`, so refusals made later (by code the host stopped waiting for) are written by a
 * later call.
 */
export async function auditDenials(
  k: { tenantTx: TenantTx; logger: Logger },
  req: { tenantId: string; caller: Caller; entry: { kind: string; name: string } },
  denials: InvocationTree['denials'],
): Promise<void> {
  if (denials.size === 0) return
  const taken = [...denials.values()]
  denials.clear()
  try {
    await k.tenantTx(req.tenantId, (tx) =>
      appendAudit(
        tx,
        req.tenantId,
        ...taken.map((d) => ({
          action: 'plugin.capability.denied',
          actor: { kind: 'plugin' as const, id: d.plugin },
          target: { kind: 'plugin_installation', id: d.installationId },
          data: {
            caller: { kind: req.caller.kind, id: req.caller.id },
            entry: req.entry,
            op: d.op,
            target: d.target,
            reason: d.reason,
            count: d.count,
          },
        })),
      ),
    )
  } catch (err) {
    k.logger.error({ err, tenantId: req.tenantId }, 'capability denials could not be audited')
  }
}
