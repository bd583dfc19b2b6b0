// Who killed a worker: decides, when a worker process ends with invocations in it, which of
// them belong to the tenant that caused it (they fail for good, and the tenant is cordoned) and
// which were bystanders (they fail with a retryable SBX_ERR_WORKER_LOST, so the kernel may run
// them once more elsewhere).

export interface HeldInvocation {
  rid: number
  tenantId: string
  /** Host calls it awaits: while > 0 its isolate was idle. */
  outstanding: number
  memoryMb: number
}

export interface WorkerEnd {
  /** The worker's CPU watchdog named the invocation that overran its limit. */
  overranRid?: number
  /** The parent killed it for exceeding its process memory budget. */
  exhausted: boolean
  /** The parent killed it for missing an invocation's deadline: that invocation's tenant. */
  hungTenant?: string
}

export interface LossVerdict {
  /** The invocation that did it, when the worker could name it. */
  culpritRid?: number
  /** Tenants held responsible (empty: nobody can be blamed, everyone is a bystander). */
  culprits: Set<string>
}

export function attributeLoss(end: WorkerEnd, held: HeldInvocation[]): LossVerdict {
  const named = end.overranRid === undefined ? undefined : held.find((h) => h.rid === end.overranRid)
  if (named) return { culpritRid: named.rid, culprits: new Set([named.tenantId]) }
  if (end.hungTenant !== undefined) return { culprits: new Set([end.hungTenant]) }
  // Exhaustion is memory held, by running and awaiting isolates alike: weigh tenants by the
  // memory their invocations may use. A crash is caused by code running at the time: an
  // isolate awaiting host calls cannot have caused it, so weigh tenants by running invocations.
  const weights = new Map<string, number>()
  for (const h of held) {
    if (!end.exhausted && h.outstanding > 0) continue
    weights.set(h.tenantId, (weights.get(h.tenantId) ?? 0) + (end.exhausted ? h.memoryMb : 1))
  }
  const top = Math.max(0, ...weights.values())
  return { culprits: new Set(top > 0 ? [...weights].filter(([, w]) => w === top).map(([t]) => t) : []) }
}
