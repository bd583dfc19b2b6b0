import { Migration } from '@mikro-orm/migrations'

// Until when every run of an installation keeps its input and its host calls' arguments and
// results, whatever its budget of detailed records a minute (ADR 0113): a window a tenant's
// installer opens while investigating a plugin. Null: the budget alone decides.
export class Migration20261213000101InstallationDetailWindow extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table plugin_installations add column detail_until timestamptz;`)
  }

  override async down(): Promise<void> {
    this.addSql(`alter table plugin_installations drop column detail_until;`)
  }
}
