import { Migration } from '@mikro-orm/migrations'

// The embedded job queue takes tenants in turn and caps each one's queued jobs (ADR 0012).
//
// - event_jobs.tenant_id: the tenant a job works for ('' for work of no tenant), counted at add
//   time against the cap.
// - event_jobs.turn: the job's place in its tenant's line when added (its tenant's queued jobs
//   then, never lower than the tenant's previous job): claims go by turn, so a quiet tenant's
//   first job (turn 1) comes before a busy tenant's 600th.
export class Migration20261205000012EventJobsFairness extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `alter table event_jobs add column tenant_id text not null default '', add column turn bigint not null default 0;`,
    )
    this.addSql(`update event_jobs set tenant_id = coalesce(data->>'tenantId', '');`)
    this.addSql(`create index event_jobs_turn_idx on event_jobs (queue, turn, run_at, seq);`)
    this.addSql(`create index event_jobs_tenant_idx on event_jobs (queue, tenant_id);`)
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists event_jobs_tenant_idx;`)
    this.addSql(`drop index if exists event_jobs_turn_idx;`)
    this.addSql(`alter table event_jobs drop column if exists turn, drop column if exists tenant_id;`)
  }
}
