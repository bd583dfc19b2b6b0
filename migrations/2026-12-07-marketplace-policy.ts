import { Migration } from '@mikro-orm/migrations'

const PLATFORM = `'00000000-0000-0000-0000-000000000000'::uuid`
const TENANT = `nullif(current_setting('app.tenant_id', true), '')::uuid`

// The marketplace's platform policy on data classification (ADR 0060): one row, read by the
// publishing checks and written by a platform admin. It is the marketplace's table, created by a
// marketplace migration; databases that created it with the governance migration keep theirs.
export class Migration20261207000802MarketplacePolicy extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table if not exists marketplace_policy (
  id boolean primary key default true check (id),
  require_classification boolean not null default false,
  updated_at timestamptz not null default now(),
  updated_by text
);`)
    this.addSql(`insert into marketplace_policy (id) values (true) on conflict (id) do nothing;`)
    this.addSql(`alter table marketplace_policy enable row level security;`)
    this.addSql(`alter table marketplace_policy force row level security;`)
    this.addSql(`drop policy if exists marketplace_policy_read on marketplace_policy;`)
    this.addSql(`create policy marketplace_policy_read on marketplace_policy for select to trellis_app using (true);`)
    this.addSql(`drop policy if exists marketplace_policy_update on marketplace_policy;`)
    this.addSql(
      `create policy marketplace_policy_update on marketplace_policy for update to trellis_app using (${TENANT} = ${PLATFORM}) with check (${TENANT} = ${PLATFORM});`,
    )
    this.addSql(`grant select, update on marketplace_policy to trellis_app;`)
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists marketplace_policy;')
  }
}
