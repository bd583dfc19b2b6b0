import { Migration } from '@mikro-orm/migrations'

// Events: delivery-failure visibility and retention.
//
// - webhook_deliveries.failure_reason says why a failed delivery failed for good: dead_letter
//   (its last retry failed), gone (the receiver answered 410 and the endpoint was disabled) or
//   endpoint_disabled (a user disabled the endpoint while it was pending). The delivery log
//   filters on it.
// - trellis_events may write an event into the outbox of the tenant it is working in (the
//   transaction's tenant, like every emitter): `kernel.webhook.delivery_failed` is written in
//   the transaction that records the dead letter.
// - Retention: trellis_events may delete processed events and finished (not pending)
//   deliveries, across tenants; their attempts go with them (on delete cascade). The policies
//   themselves refuse an unprocessed event or a pending delivery, whatever the query says.
//   Deliveries are found by event to keep events that still have deliveries (and to make the
//   foreign-key check of each deleted event an index lookup).
export class Migration20261129000002EventsRetention extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `alter table webhook_deliveries add column failure_reason text check (failure_reason in ('dead_letter', 'gone', 'endpoint_disabled'));`,
    )
    this.addSql(
      `update webhook_deliveries set failure_reason = case when last_status = 410 then 'gone' else 'dead_letter' end where status = 'failed';`,
    )
    this.addSql(`create index webhook_deliveries_event_idx on webhook_deliveries (event_id);`)

    this.addSql(
      `create policy events_worker_emit on events for insert to trellis_events with check (tenant_id = trellis_current_tenant() and current_user = 'trellis_events' and dispatched_at is null and processed_at is null);`,
    )
    this.addSql(`grant insert on events to trellis_events;`)

    this.addSql(
      `create policy events_retention on events for delete to trellis_events using (current_user = 'trellis_events' and processed_at is not null);`,
    )
    this.addSql(`grant delete on events to trellis_events;`)
    // Permissive: any tenant's finished deliveries. Restrictive: never a pending one, also not
    // through the per-tenant worker policy (which is FOR ALL).
    this.addSql(
      `create policy webhook_deliveries_retention on webhook_deliveries for delete to trellis_events using (current_user = 'trellis_events' and status <> 'pending');`,
    )
    this.addSql(
      `create policy webhook_deliveries_keep_pending on webhook_deliveries as restrictive for delete to trellis_events using (status <> 'pending');`,
    )
    this.addSql(`grant delete on webhook_deliveries to trellis_events;`)
  }

  override async down(): Promise<void> {
    this.addSql(`revoke delete on webhook_deliveries from trellis_events;`)
    this.addSql(`drop policy if exists webhook_deliveries_keep_pending on webhook_deliveries;`)
    this.addSql(`drop policy if exists webhook_deliveries_retention on webhook_deliveries;`)
    this.addSql(`revoke delete on events from trellis_events;`)
    this.addSql(`drop policy if exists events_retention on events;`)
    this.addSql(`revoke insert on events from trellis_events;`)
    this.addSql(`drop policy if exists events_worker_emit on events;`)
    this.addSql(`drop index if exists webhook_deliveries_event_idx;`)
    this.addSql(`alter table webhook_deliveries drop column if exists failure_reason;`)
  }
}
