import type { Database, Tx } from '../db/database.js'
import { AI } from './errors.js'

/** A monthly budget that applies to a call: whose it is, what it counts, its limit. */
export interface Budget {
  /** The organisation owning the budget row (the tenant, or its partner). */
  owner: string
  scopeId: string
  scope: 'tenant' | 'partner' | 'installation'
  unit: 'tokens' | 'micros'
  limit: number
}

/** What a call reserved on each budget, to settle afterwards. */
export interface Reservation {
  budget: Budget
  amount: number
}

/** The budgets that govern a call of `tenantId` (and its partner, and the installation). */
export async function budgetsFor(
  tx: Tx,
  tenantId: string,
  partnerId: string | null,
  installationId: string | null | undefined,
): Promise<Budget[]> {
  const rows = await tx.sql<{ scope_id: string; scope: Budget['scope']; unit: Budget['unit']; monthly_limit: string }>(
    'select scope_id, scope, unit, monthly_limit from ai_budgets where scope_id = ?::uuid or scope_id = ?::uuid',
    [tenantId, installationId ?? tenantId],
  )
  const out: Budget[] = rows.map((r) => ({
    owner: tenantId,
    scopeId: r.scope_id,
    scope: r.scope,
    unit: r.unit,
    limit: Number(r.monthly_limit),
  }))
  if (partnerId) {
    await tx.useOrg(partnerId)
    const p = await tx.sql<{ unit: Budget['unit']; monthly_limit: string }>(
      'select unit, monthly_limit from ai_budgets where scope_id = ?::uuid',
      [partnerId],
    )
    for (const r of p)
      out.push({ owner: partnerId, scopeId: partnerId, scope: 'partner', unit: r.unit, limit: Number(r.monthly_limit) })
    await tx.useOrg(tenantId)
  }
  return out
}

/**
 * Reserves `amount(unit)` on every budget, atomically per budget row: the row lock that
 * `on conflict do update` takes makes parallel calls queue, and the `where` refuses a
 * reservation that would take used + reserved over the limit — so parallel calls never
 * overspend. Any refusal throws AI_ERR_BUDGET_EXHAUSTED and the caller's transaction rolls
 * back every reservation it made.
 */
export async function reserve(
  tx: Tx,
  current: string,
  budgets: Budget[],
  period: string,
  amount: (unit: Budget['unit']) => number,
): Promise<Reservation[]> {
  const out: Reservation[] = []
  for (const b of budgets) {
    const n = amount(b.unit)
    if (b.owner !== current) await tx.useOrg(b.owner)
    const rows =
      n > b.limit
        ? []
        : await tx.sql(
            `insert into ai_usage (scope_id, period, reserved) values (?::uuid, ?, ?)
             on conflict (tenant_id, scope_id, period) do update set reserved = ai_usage.reserved + excluded.reserved
             where ai_usage.used + ai_usage.reserved + excluded.reserved <= ?
             returning reserved`,
            [b.scopeId, period, n, b.limit],
          )
    if (b.owner !== current) await tx.useOrg(current)
    if (rows.length === 0) {
      // Released here, not only by a rollback: the transaction may be an invocation's that goes on.
      await settle(tx, current, out, period, () => 0)
      throw AI.BUDGET_EXHAUSTED({ scope: b.scope, unit: b.unit })
    }
    out.push({ budget: b, amount: n })
  }
  return out
}

/**
 * The reservation a budgeted call makes before the model, outside any invocation: a short
 * transaction of its own in the tenant's organisation (begin and scope, one statement per
 * budget, commit), refused unless the tenant and its partner are active. A single statement in
 * autocommit with its values inlined was measured slower on the embedded database (its planning
 * costs more than the round trips it saves; ADR 0101).
 */
export function reserveBeforeModel(
  db: Pick<Database, 'inOrg'>,
  tenantId: string,
  budgets: Budget[],
  period: string,
  amount: (unit: Budget['unit']) => number,
): Promise<Reservation[]> {
  return db.inOrg(tenantId, async (tx, status) => {
    if (status.orgStatus !== 'active' || status.partnerStatus !== 'active')
      throw AI.DISABLED(undefined, { cause: status })
    return reserve(tx, tenantId, budgets, period, amount)
  })
}

/**
 * Turns reservations into use: `actual(unit)` is added to used — never more than was reserved,
 * so a budget is never overspent even by an endpoint that answers past maxTokens (the call
 * record keeps the real counts) — and the reservation is released.
 */
export async function settle(
  tx: Tx,
  current: string,
  reservations: Reservation[],
  period: string,
  actual: (unit: Budget['unit']) => number,
): Promise<void> {
  for (const r of reservations)
    await asOwner(tx, current, r.budget.owner, () =>
      tx.sql(
        'update ai_usage set reserved = greatest(reserved - ?, 0), used = used + ? where scope_id = ?::uuid and period = ?',
        [r.amount, Math.min(actual(r.budget.unit), r.amount), r.budget.scopeId, period],
      ),
    )
}

/** A settlement as a row: what is released of a budget's reservation and added to its use. */
export interface SettlementRow {
  scopeId: string
  release: number
  used: number
}

/**
 * Splits a call's settlement: the budgets `current` owns, as rows the call's record statement
 * settles too (one round trip, ADR 0101), and the others (a partner's), settled one by one in
 * their owner's organisation. Use is never more than was reserved, as in {@link settle}.
 */
export function splitSettlement(
  current: string,
  reservations: Reservation[],
  actual: (unit: Budget['unit']) => number,
): { own: SettlementRow[]; others: Reservation[] } {
  const own: SettlementRow[] = []
  const others: Reservation[] = []
  for (const r of reservations)
    if (r.budget.owner === current)
      own.push({ scopeId: r.budget.scopeId, release: r.amount, used: Math.min(actual(r.budget.unit), r.amount) })
    else others.push(r)
  return { own, others }
}

/**
 * Adds what a call used to each of its budgets, without a reservation: redoes, in a transaction
 * of its own, a settlement that a rolled-back invocation took with it (the call did happen).
 */
export async function charge(
  tx: Tx,
  current: string,
  reservations: Reservation[],
  period: string,
  actual: (unit: Budget['unit']) => number,
): Promise<void> {
  for (const r of reservations) {
    const n = Math.min(actual(r.budget.unit), r.amount)
    if (n > 0)
      await asOwner(tx, current, r.budget.owner, () =>
        tx.sql(
          `insert into ai_usage (scope_id, period, used) values (?::uuid, ?, ?)
           on conflict (tenant_id, scope_id, period) do update set used = ai_usage.used + excluded.used`,
          [r.budget.scopeId, period, n],
        ),
      )
  }
}

/** Runs `fn` in the budget owner's organisation (the partner's, for a partner budget), then back in `current`. */
async function asOwner<T>(tx: Tx, current: string, owner: string, fn: () => Promise<T>): Promise<T> {
  if (owner === current) return fn()
  await tx.useOrg(owner)
  try {
    return await fn()
  } finally {
    await tx.useOrg(current)
  }
}
