import { Migration } from '@mikro-orm/migrations'

// An alert rule that sends its breaches to a role as tasks may give those tasks a deadline: the
// hours the role has to act before the task is escalated (docs/insights.md, "Alert rules").
export class Migration20261209000601InsightsTaskSla extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `alter table insight_alert_rules add column task_sla_hours double precision check (task_sla_hours is null or (task_sla_hours > 0 and task_role is not null));`,
    )
  }

  override async down(): Promise<void> {
    this.addSql(`alter table insight_alert_rules drop column if exists task_sla_hours;`)
  }
}
