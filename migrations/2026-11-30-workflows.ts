import { Migration } from '@mikro-orm/migrations'

// Durable workflows: instances (pinned to the plugin version they started on), the history of
// their steps, and human tasks. Tenant-owned like everything else: request transactions
// (trellis_app) see their tenant's rows only. The runtime's sweeper finds due timers, missed
// SLAs and stalled steps across tenants as trellis_events (read-only, pinned to that role),
// then acts in each tenant's own transaction.
export class Migration20261130000003Workflows extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table workflow_instances (
  id uuid primary key,
  tenant_id uuid not null default trellis_current_tenant(),
  installation_id uuid not null,
  plugin text not null,
  version_id uuid not null references plugin_versions(id),
  version text not null,
  workflow text not null,
  status text not null check (status in ('running', 'waiting', 'completed', 'failed', 'cancelled', 'compensating')),
  step text,
  step_seq int not null default 0,
  attempt int not null default 0,
  input jsonb,
  output jsonb,
  error jsonb,
  wait jsonb,
  run_at timestamptz not null default now(),
  compensations jsonb not null default '[]',
  start_key text,
  started_by text not null,
  started_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz
);`)
    this.addSql(`create index workflow_instances_tenant_idx on workflow_instances (tenant_id, id);`)
    this.addSql(
      `create index workflow_instances_due_idx on workflow_instances (run_at) where status in ('running', 'waiting', 'compensating');`,
    )
    this.addSql(
      `create unique index workflow_instances_start_key_idx on workflow_instances (tenant_id, installation_id, workflow, start_key) where start_key is not null;`,
    )
    this.addSql(`
create table workflow_steps (
  id uuid primary key,
  tenant_id uuid not null default trellis_current_tenant(),
  instance_id uuid not null references workflow_instances(id) on delete cascade,
  seq int not null,
  step text not null,
  attempt int not null,
  status text not null check (status in ('completed', 'failed', 'compensated')),
  input jsonb,
  output jsonb,
  error jsonb,
  started_at timestamptz not null,
  finished_at timestamptz not null default now(),
  wall_ms real not null
);`)
    // A completed step is recorded once: a retried or re-delivered job can never double it.
    this.addSql(
      `create unique index workflow_steps_once_idx on workflow_steps (instance_id, seq) where status = 'completed';`,
    )
    this.addSql(`create index workflow_steps_instance_idx on workflow_steps (tenant_id, instance_id, seq);`)
    this.addSql(`
create table workflow_tasks (
  id uuid primary key,
  tenant_id uuid not null default trellis_current_tenant(),
  instance_id uuid not null references workflow_instances(id) on delete cascade,
  step_seq int not null,
  plugin text not null,
  workflow text not null,
  title text not null,
  role text,
  assignee uuid,
  form jsonb,
  outcomes text[] not null,
  next jsonb not null,
  data jsonb,
  input jsonb,
  status text not null default 'open' check (status in ('open', 'claimed', 'completed', 'cancelled')),
  claimed_by uuid,
  sla_ms bigint,
  due_at timestamptz,
  escalate_to text,
  escalated_at timestamptz,
  outcome text,
  result jsonb,
  completed_by uuid,
  completed_at timestamptz,
  created_at timestamptz not null default now()
);`)
    this.addSql(`create index workflow_tasks_tenant_idx on workflow_tasks (tenant_id, status, id);`)
    this.addSql(
      `create index workflow_tasks_due_idx on workflow_tasks (due_at) where status in ('open', 'claimed') and escalated_at is null and due_at is not null;`,
    )
    this.addSql(`
create table workflow_schedules (
  tenant_id uuid not null default trellis_current_tenant(),
  installation_id uuid not null,
  workflow text not null,
  next_at timestamptz not null,
  primary key (tenant_id, installation_id, workflow)
);`)

    for (const table of ['workflow_instances', 'workflow_steps', 'workflow_tasks', 'workflow_schedules']) {
      this.addSql(`alter table ${table} enable row level security;`)
      this.addSql(`alter table ${table} force row level security;`)
      this.addSql(
        `create policy ${table}_tenant on ${table} for all to trellis_app using (tenant_id = trellis_current_tenant()) with check (tenant_id = trellis_current_tenant());`,
      )
      this.addSql(`grant select, insert, update, delete on ${table} to trellis_app;`)
    }
    for (const table of ['workflow_instances', 'workflow_tasks', 'workflow_schedules']) {
      this.addSql(
        `create policy ${table}_sweep on ${table} for select to trellis_events using (current_user = 'trellis_events');`,
      )
      this.addSql(`grant select on ${table} to trellis_events;`)
    }
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists workflow_schedules, workflow_tasks, workflow_steps, workflow_instances cascade;`)
  }
}
