import { Migration } from '@mikro-orm/migrations'

// Long generations that survive a process's death (ADR 0087). A generation is a row written in
// the invocation's transaction that asks for it (queued), claimed by the worker that runs it
// (running, with a lease and an attempt number), and finished once (done or failed) in the same
// transaction as its event — so the event is written exactly once however often the job runs.
// The sweeper (role trellis_events, like the workflow sweeper) reads every tenant's unfinished
// rows to queue again those whose job was lost; it may only note that it did (swept, swept_at).
export class Migration20261209000402AiGenerations extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table ai_generations (
  id uuid primary key,
  tenant_id uuid not null default trellis_current_tenant(),
  installation_id uuid,
  plugin text not null,
  event text not null,
  caller jsonb not null,
  request jsonb,
  status text not null default 'queued' check (status in ('queued', 'running', 'done', 'failed')),
  attempts int not null default 0,
  lease_until timestamptz,
  swept int not null default 0,
  swept_at timestamptz,
  result jsonb,
  error_code text,
  record_id uuid,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz
);`)
    this.addSql(
      `create index ai_generations_unfinished_idx on ai_generations (created_at) where status in ('queued', 'running');`,
    )
    this.addSql(`create index ai_generations_tenant_idx on ai_generations (tenant_id, created_at);`)
    this.addSql(`alter table ai_generations enable row level security;`)
    this.addSql(`alter table ai_generations force row level security;`)
    this.addSql(
      `create policy ai_generations_own on ai_generations for all to trellis_app using (tenant_id = trellis_current_tenant()) with check (tenant_id = trellis_current_tenant());`,
    )
    this.addSql(`grant select, insert, update on ai_generations to trellis_app;`)
    this.addSql(
      `create policy ai_generations_sweep on ai_generations for all to trellis_events using (current_user = 'trellis_events') with check (current_user = 'trellis_events');`,
    )
    this.addSql(`grant select on ai_generations to trellis_events;`)
    this.addSql(`grant update (swept, swept_at) on ai_generations to trellis_events;`)
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists ai_generations;')
  }
}
