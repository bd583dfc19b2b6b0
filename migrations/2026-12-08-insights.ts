import { Migration } from '@mikro-orm/migrations'

// Operational intelligence (ADR 0069, 0070): alert rules a tenant sets on its metrics, the
// anomalies and breaches a detection run stores, and rollups — materialised series with the
// per-period signature of the records they were computed from. Every table is tenant-owned
// under forced row-level security; the scheduler finds the tenants with rules or rollups as
// trellis_events (select only, pinned to that role), then works in each tenant's transaction.
export class Migration20261208000301Insights extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table insight_alert_rules (
  id uuid primary key,
  tenant_id uuid not null default trellis_current_tenant(),
  metric text not null,
  kind text not null check (kind in ('threshold', 'anomaly')),
  grain text not null check (grain in ('day', 'week', 'month', 'quarter', 'year')),
  filter jsonb,
  op text check (op in ('above', 'below')),
  threshold numeric,
  season int,
  score double precision,
  min_volume numeric not null default 0,
  by text,
  task_role text,
  created_by uuid,
  created_at timestamptz not null default now(),
  last_run_at timestamptz,
  last_error text,
  check ((kind = 'threshold') = (op is not null and threshold is not null))
);`)
    this.addSql(`create index insight_alert_rules_tenant_idx on insight_alert_rules (tenant_id, metric);`)
    this.addSql(`
create table insight_anomalies (
  id uuid primary key,
  tenant_id uuid not null default trellis_current_tenant(),
  rule_id uuid not null references insight_alert_rules(id) on delete cascade,
  metric text not null,
  grain text not null,
  period date not null,
  value numeric not null,
  baseline numeric,
  score double precision,
  by text,
  contributors jsonb,
  detected_at timestamptz not null,
  unique (rule_id, period)
);`)
    this.addSql(`create index insight_anomalies_tenant_idx on insight_anomalies (tenant_id, id);`)
    this.addSql(`
create table insight_alert_breaches (
  id uuid primary key,
  tenant_id uuid not null default trellis_current_tenant(),
  rule_id uuid not null references insight_alert_rules(id) on delete cascade,
  period date not null,
  value numeric not null,
  anomaly_id uuid references insight_anomalies(id) on delete cascade,
  breached_at timestamptz not null,
  unique (rule_id, period)
);`)
    this.addSql(`
create table metric_rollups (
  id uuid primary key,
  tenant_id uuid not null default trellis_current_tenant(),
  metric text not null,
  grain text not null check (grain in ('day', 'week', 'month', 'quarter', 'year')),
  group_by text[] not null,
  created_by uuid,
  created_at timestamptz not null default now(),
  refreshed_at timestamptz,
  joins_signature text,
  last_error text,
  unique (tenant_id, metric, grain, group_by)
);`)
    this.addSql(`
create table metric_rollup_periods (
  tenant_id uuid not null default trellis_current_tenant(),
  rollup_id uuid not null references metric_rollups(id) on delete cascade,
  period date not null,
  records bigint not null,
  checksum bigint not null,
  primary key (rollup_id, period)
);`)
    this.addSql(`
create table metric_rollup_rows (
  tenant_id uuid not null default trellis_current_tenant(),
  rollup_id uuid not null references metric_rollups(id) on delete cascade,
  period date not null,
  dims text[] not null,
  value text
);`)
    this.addSql(`create index metric_rollup_rows_idx on metric_rollup_rows (rollup_id, period);`)
    const tables = [
      'insight_alert_rules',
      'insight_anomalies',
      'insight_alert_breaches',
      'metric_rollups',
      'metric_rollup_periods',
      'metric_rollup_rows',
    ]
    for (const table of tables) {
      this.addSql(`alter table ${table} enable row level security;`)
      this.addSql(`alter table ${table} force row level security;`)
      this.addSql(
        `create policy ${table}_tenant on ${table} for all to trellis_app using (tenant_id = trellis_current_tenant()) with check (tenant_id = trellis_current_tenant());`,
      )
      this.addSql(`grant select, insert, update, delete on ${table} to trellis_app;`)
    }
    for (const table of ['insight_alert_rules', 'metric_rollups']) {
      this.addSql(
        `create policy ${table}_sweep on ${table} for select to trellis_events using (current_user = 'trellis_events');`,
      )
      this.addSql(`grant select on ${table} to trellis_events;`)
    }
  }

  override async down(): Promise<void> {
    this.addSql(
      `drop table if exists metric_rollup_rows, metric_rollup_periods, metric_rollups, insight_alert_breaches, insight_anomalies, insight_alert_rules cascade;`,
    )
  }
}
