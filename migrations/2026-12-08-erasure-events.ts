import { Migration } from '@mikro-orm/migrations'

// Right to erasure reaches the event outbox and webhook attempts (docs/governance.md, "Right to
// erasure"; ADR 0077). A request transaction (trellis_app) may, in its own tenant only, empty an
// event's payload and clear a webhook attempt's stored response and error — nothing else: the
// outbox stays append-only for every other change, and an attempt's other columns stay as the
// delivery worker wrote them.
export class Migration20261208000801ErasureEvents extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create policy events_erase on events for update to trellis_app using (tenant_id = trellis_current_tenant()) with check (tenant_id = trellis_current_tenant() and data = '{}'::jsonb);`,
    )
    this.addSql(`grant update (data) on events to trellis_app;`)
    this.addSql(
      `create policy webhook_attempts_erase_only on webhook_attempts as restrictive for update to trellis_app using (true) with check (response is null and error is null);`,
    )
    this.addSql(`grant update (response, error) on webhook_attempts to trellis_app;`)
  }

  override async down(): Promise<void> {
    this.addSql(`revoke update (response, error) on webhook_attempts from trellis_app;`)
    this.addSql(`drop policy if exists webhook_attempts_erase_only on webhook_attempts;`)
    this.addSql(`revoke update (data) on events from trellis_app;`)
    this.addSql(`drop policy if exists events_erase on events;`)
  }
}
