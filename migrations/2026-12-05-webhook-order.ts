import { Migration } from '@mikro-orm/migrations'

// Webhooks: strict order per subject per endpoint, and a per-subject sequence number.
//
// - events.seq: the event's number in its subject's stream (1, 2, 3 … per tenant and subject),
//   assigned when the event is fanned out — fan-out already runs in order per subject — and sent
//   in every delivery's payload as `sequence`, so a receiver can see a gap (a dead letter).
// - event_subject_seqs: the last number given per tenant and subject. A counter of its own, not
//   max(events.seq): retention deletes old events, and a subject's numbers must never restart.
// - webhook_deliveries.subject / order_seq: a delivery is attempted only while no delivery of an
//   earlier event about the same subject to the same endpoint is pending (head-of-line blocking
//   limited to that subject and endpoint). order_seq is null for a redelivery, which neither
//   waits nor holds anything back.
export class Migration20261205000003WebhookOrder extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table events add column seq bigint;`)
    this.addSql(`grant update (seq) on events to trellis_events;`)
    this.addSql(`
create table event_subject_seqs (
  tenant_id uuid not null,
  subject text not null,
  seq bigint not null,
  primary key (tenant_id, subject)
);`)
    this.addSql(`alter table event_subject_seqs enable row level security;`)
    this.addSql(`alter table event_subject_seqs force row level security;`)
    this.addSql(
      `create policy event_subject_seqs_worker on event_subject_seqs for all to trellis_events using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid and current_user = 'trellis_events') with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid and current_user = 'trellis_events');`,
    )
    this.addSql(`grant select, insert, update on event_subject_seqs to trellis_events;`)

    this.addSql(`alter table webhook_deliveries add column subject text;`)
    this.addSql(`alter table webhook_deliveries add column order_seq bigint;`)
    this.addSql(
      `create index webhook_deliveries_subject_order_idx on webhook_deliveries (endpoint_id, subject, order_seq) where status = 'pending' and order_seq is not null;`,
    )
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists webhook_deliveries_subject_order_idx;`)
    this.addSql(`alter table webhook_deliveries drop column if exists order_seq;`)
    this.addSql(`alter table webhook_deliveries drop column if exists subject;`)
    this.addSql(`drop table if exists event_subject_seqs;`)
    this.addSql(`revoke update (seq) on events from trellis_events;`)
    this.addSql(`alter table events drop column if exists seq;`)
  }
}
