import { Migration } from '@mikro-orm/migrations'

// Publishing: the automated checks of a published version run as jobs. A worker claims a
// version in status `checking` by taking a short lease on it (`for update skip locked`, so
// several kernel processes share the work and never check one version twice at once), renews
// nothing, and clears the lease when it stores the result. A process that dies mid-check leaves
// an expired lease behind: another process (or the same one after a restart) claims the version
// again. `checks_attempts` bounds how often a bundle that brings the checker down is retried.
export class Migration20261130000002MarketplacePublishing extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `alter table plugin_versions add column checks_lease_until timestamptz, add column checks_attempts int not null default 0;`,
    )
    this.addSql(`grant update (checks_lease_until, checks_attempts) on plugin_versions to trellis_app;`)
  }

  override async down(): Promise<void> {
    this.addSql(
      `alter table plugin_versions drop column if exists checks_lease_until, drop column if exists checks_attempts;`,
    )
  }
}
