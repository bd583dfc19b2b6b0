import type { TestKernel } from './test-kernel.js'
import { eventually } from './receiver.js'

/**
 * Waits until the tenant's event pipeline has provably drained: every event it emitted is fanned
 * out and none of its webhook deliveries is pending. Only then does "nothing more arrived" mean
 * something — anything still to come would show here as an unprocessed event or a pending delivery.
 */
export async function untilDrained(k: TestKernel, tenantId: string, ms = 20_000): Promise<void> {
  await eventually(async () => {
    const [row] = await k.ownerSql<{ events: number; deliveries: number }>(
      `select (select count(*) from events where tenant_id = ?::uuid and processed_at is null)::int as events,
              (select count(*) from webhook_deliveries where tenant_id = ?::uuid and status = 'pending')::int as deliveries`,
      [tenantId, tenantId],
    )
    return row!.events === 0 && row!.deliveries === 0
  }, ms)
}
