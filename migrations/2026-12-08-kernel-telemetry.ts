import { Migration } from '@mikro-orm/migrations'

// Kernel telemetry as metric sources (ADR 0069): one view giving workflow instances, human
// tasks, webhook deliveries and plugin invocations the shape of plugin records — (plugin,
// collection, id, version, created_at, updated_at, data) — so kernel metrics compile with the
// same compiler. security_invoker: the view reads as the caller (trellis_app), so each table's
// own row-level security applies and a tenant sees only its rows.
export class Migration20261208000302KernelTelemetry extends Migration {
  override async up(): Promise<void> {
    const ts = (c: string) => `to_char(${c} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`
    const hours = (from: string, to: string) => `round((extract(epoch from ${to} - ${from}) / 3600)::numeric, 6)`
    this.addSql(`
create view kernel_telemetry_records with (security_invoker = true) as
select tenant_id, 'trellis/kernel'::text as plugin, 'workflow_instances'::text as collection, id, 1 as version,
       started_at as created_at, updated_at,
       jsonb_build_object('plugin', plugin, 'workflow', workflow, 'status', status,
         'startedAt', ${ts('started_at')}, 'finishedAt', ${ts('finished_at')},
         'hours', ${hours('started_at', 'finished_at')}, 'error', coalesce(error ->> 'code', error ->> 'reason')) as data
  from workflow_instances
union all
select tenant_id, 'trellis/kernel', 'workflow_tasks', id, 1, created_at, coalesce(completed_at, created_at),
       jsonb_build_object('plugin', plugin, 'workflow', workflow, 'role', role, 'status', status,
         'createdAt', ${ts('created_at')}, 'completedAt', ${ts('completed_at')}, 'escalatedAt', ${ts('escalated_at')},
         'hours', ${hours('created_at', 'completed_at')})
  from workflow_tasks
union all
select tenant_id, 'trellis/kernel', 'webhook_deliveries', id, attempts, created_at, updated_at,
       jsonb_build_object('eventType', event_type, 'status', status, 'reason', failure_reason, 'attempts', attempts,
         'createdAt', ${ts('created_at')})
  from webhook_deliveries
union all
select tenant_id, 'trellis/kernel', 'plugin_invocations', id, 1, started_at, started_at,
       jsonb_build_object('plugin', plugin, 'kind', entry_kind, 'entry', entry_name, 'outcome', outcome, 'error', error_code,
         'cpuMs', cpu_ms, 'wallMs', wall_ms, 'startedAt', ${ts('started_at')})
  from plugin_invocations;`)
    this.addSql(`grant select on kernel_telemetry_records to trellis_app;`)
  }

  override async down(): Promise<void> {
    this.addSql(`drop view if exists kernel_telemetry_records;`)
  }
}
