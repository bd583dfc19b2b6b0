import { Migration } from '@mikro-orm/migrations'

// Events: the transactional outbox, the embedded job queue, and webhooks.
//
// The outbox row is written by the request transaction (trellis_app) in the same statement or
// transaction as the change it describes; its tenant_id defaults to the transaction's tenant
// and row-level security refuses any other, so a caller cannot emit into another tenant.
//
// New role (NOLOGIN, owns nothing, no BYPASSRLS):
//   trellis_events  the dispatcher and delivery workers. Reads every tenant's unprocessed
//                   outbox rows and stamps them dispatched/processed (cross-tenant, pinned to the role in
//                   force); fans an event out to its own tenant's endpoints only (the worker
//                   sets app.tenant_id to the event's tenant); owns the job table's rows.
export class Migration20261128000001Events extends Migration {
  override async up(): Promise<void> {
    this.addSql(`do $$ begin
  begin create role trellis_events nologin nosuperuser nobypassrls; exception when duplicate_object or unique_violation then null; end;
end $$;`)
    this.addSql(`grant usage on schema public to trellis_events;`)
    this.addSql(`
create table events (
  id uuid primary key,
  tenant_id uuid not null default trellis_current_tenant(),
  type text not null,
  source text not null,
  subject text not null,
  time timestamptz not null default now(),
  data jsonb not null default '{}',
  dispatched_at timestamptz,
  processed_at timestamptz
);`)
    this.addSql(`create index events_tenant_idx on events (tenant_id, id);`)
    this.addSql(`create index events_tenant_type_idx on events (tenant_id, type, id);`)
    this.addSql(`create index events_pending_idx on events (id) where processed_at is null;`)
    this.addSql(
      `create index events_subject_pending_idx on events (tenant_id, subject, id) where processed_at is null;`,
    )

    // The embedded queue (used when REDIS_URL is not set): claimed with FOR UPDATE SKIP LOCKED,
    // leased for a while so a crashed worker's jobs come back.
    this.addSql(`
create table event_jobs (
  id text primary key,
  queue text not null,
  seq bigint generated always as identity,
  name text not null,
  data jsonb not null,
  run_at timestamptz not null default now(),
  attempts int not null default 0,
  locked_until timestamptz,
  created_at timestamptz not null default now()
);`)
    this.addSql(`create index event_jobs_ready_idx on event_jobs (queue, run_at, seq);`)

    this.addSql(`
create table webhook_endpoints (
  id uuid primary key,
  tenant_id uuid not null default trellis_current_tenant(),
  url text not null,
  types text[] not null,
  description text not null default '',
  status text not null default 'active' check (status in ('active', 'disabled')),
  disabled_reason text,
  secret_enc text not null,
  previous_secret_enc text,
  previous_secret_expires_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);`)
    this.addSql(`create index webhook_endpoints_tenant_idx on webhook_endpoints (tenant_id, id);`)
    this.addSql(`
create table webhook_deliveries (
  id uuid primary key,
  tenant_id uuid not null,
  endpoint_id uuid not null references webhook_endpoints(id) on delete cascade,
  event_id uuid not null references events(id),
  event_type text not null,
  status text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
  attempts int not null default 0,
  last_status int,
  next_attempt_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (endpoint_id, event_id)
);`)
    this.addSql(`create index webhook_deliveries_endpoint_idx on webhook_deliveries (tenant_id, endpoint_id, id);`)
    this.addSql(
      `create index webhook_deliveries_pending_idx on webhook_deliveries (next_attempt_at) where status = 'pending';`,
    )
    this.addSql(`
create table webhook_attempts (
  id uuid primary key,
  tenant_id uuid not null,
  delivery_id uuid not null references webhook_deliveries(id) on delete cascade,
  attempt int not null,
  at timestamptz not null default now(),
  status_code int,
  duration_ms int not null,
  error text,
  response text
);`)
    this.addSql(`create index webhook_attempts_delivery_idx on webhook_attempts (tenant_id, delivery_id, id);`)

    for (const table of ['events', 'event_jobs', 'webhook_endpoints', 'webhook_deliveries', 'webhook_attempts']) {
      this.addSql(`alter table ${table} enable row level security;`)
      this.addSql(`alter table ${table} force row level security;`)
    }
    // Request transactions: their own tenant only. Outbox rows are append-only for them.
    this.addSql(
      `create policy events_read on events for select to trellis_app using (tenant_id = trellis_current_tenant());`,
    )
    this.addSql(
      `create policy events_emit on events for insert to trellis_app with check (tenant_id = trellis_current_tenant() and dispatched_at is null and processed_at is null);`,
    )
    for (const table of ['webhook_endpoints', 'webhook_deliveries', 'webhook_attempts']) {
      this.addSql(
        `create policy ${table}_tenant on ${table} for all to trellis_app using (tenant_id = trellis_current_tenant()) with check (tenant_id = trellis_current_tenant());`,
      )
    }
    this.addSql(`grant select, insert on events to trellis_app;`)
    this.addSql(`grant select, insert, update, delete on webhook_endpoints to trellis_app;`)
    this.addSql(`grant select, update on webhook_deliveries to trellis_app;`)
    this.addSql(`grant select on webhook_attempts to trellis_app;`)

    // The dispatcher: every tenant's outbox (it only reads and stamps dispatched_at).
    this.addSql(
      `create policy events_dispatch_read on events for select to trellis_events using (current_user = 'trellis_events');`,
    )
    this.addSql(
      `create policy events_dispatch on events for update to trellis_events using (current_user = 'trellis_events') with check (current_user = 'trellis_events');`,
    )
    this.addSql(`grant select on events to trellis_events;`)
    this.addSql(`grant update (dispatched_at, processed_at) on events to trellis_events;`)
    this.addSql(
      `create policy event_jobs_worker on event_jobs for all to trellis_events using (current_user = 'trellis_events') with check (current_user = 'trellis_events');`,
    )
    this.addSql(`grant select, insert, update, delete on event_jobs to trellis_events;`)
    // Fan-out and delivery run inside the event's tenant: they see that tenant's endpoints only.
    for (const table of ['webhook_endpoints', 'webhook_deliveries', 'webhook_attempts']) {
      this.addSql(
        `create policy ${table}_worker on ${table} for all to trellis_events using (tenant_id = trellis_current_tenant() and current_user = 'trellis_events') with check (tenant_id = trellis_current_tenant() and current_user = 'trellis_events');`,
      )
    }
    // The sweep finds deliveries whose job was lost (a Redis restart, a killed worker).
    this.addSql(
      `create policy webhook_deliveries_sweep on webhook_deliveries for select to trellis_events using (current_user = 'trellis_events');`,
    )
    this.addSql(`grant select on webhook_endpoints to trellis_events;`)
    this.addSql(`grant update (status, disabled_reason, updated_at) on webhook_endpoints to trellis_events;`)
    this.addSql(`grant select, insert, update on webhook_deliveries, webhook_attempts to trellis_events;`)
    this.addSql(`grant select on tenants, partners to trellis_events;`)
  }

  override async down(): Promise<void> {
    this.addSql(
      `drop table if exists webhook_attempts, webhook_deliveries, webhook_endpoints, event_jobs, events cascade;`,
    )
  }
}
