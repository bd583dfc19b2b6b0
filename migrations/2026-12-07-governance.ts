import { Migration } from '@mikro-orm/migrations'

const PLATFORM = `'00000000-0000-0000-0000-000000000000'::uuid`
const TENANT = `nullif(current_setting('app.tenant_id', true), '')::uuid`

// Data governance (ADR 0060): the per-tenant keys of encrypted fields, each wrapped by the
// platform key (its material is never stored in clear), and the marketplace's platform policy
// on data classification (one row, written by the platform).
export class Migration20261207000801Governance extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table tenant_keys (
  tenant_id uuid not null default ${TENANT},
  id text not null,
  kind text not null check (kind in ('data', 'index')),
  status text not null default 'active' check (status in ('active', 'retired')),
  wrapped text not null,
  platform_key text not null,
  created_at timestamptz not null default now(),
  retired_at timestamptz,
  primary key (tenant_id, id)
);`)
    // One active key of each kind per tenant: a concurrent first use creates one, not two.
    this.addSql(`create unique index tenant_keys_active on tenant_keys (tenant_id, kind) where status = 'active';`)
    this.addSql(`alter table tenant_keys enable row level security;`)
    this.addSql(`alter table tenant_keys force row level security;`)
    this.addSql(
      `create policy tenant_keys_tenant on tenant_keys for all to trellis_app using (tenant_id = ${TENANT}) with check (tenant_id = ${TENANT});`,
    )
    // Keys are retired, never deleted: a value encrypted under a retired key must stay readable.
    this.addSql(`grant select, insert, update on tenant_keys to trellis_app;`)

    this.addSql(`
create table marketplace_policy (
  id boolean primary key default true check (id),
  require_classification boolean not null default false,
  updated_at timestamptz not null default now(),
  updated_by text
);`)
    this.addSql(`insert into marketplace_policy (id) values (true);`)
    this.addSql(`alter table marketplace_policy enable row level security;`)
    this.addSql(`alter table marketplace_policy force row level security;`)
    this.addSql(`create policy marketplace_policy_read on marketplace_policy for select to trellis_app using (true);`)
    this.addSql(
      `create policy marketplace_policy_update on marketplace_policy for update to trellis_app using (${TENANT} = ${PLATFORM}) with check (${TENANT} = ${PLATFORM});`,
    )
    this.addSql(`grant select, update on marketplace_policy to trellis_app;`)
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists marketplace_policy;')
    this.addSql('drop table if exists tenant_keys;')
  }
}
