import { Migration } from '@mikro-orm/migrations'

const PLATFORM = `'00000000-0000-0000-0000-000000000000'::uuid`
const TENANT = `nullif(current_setting('app.tenant_id', true), '')::uuid`

// Data governance (ADR 0060): the per-tenant keys of encrypted fields, each wrapped by the
// platform key (its material is never stored in clear). The marketplace's policy on data
// classification is the marketplace's own table (2026-12-07-marketplace-policy.ts).
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
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists tenant_keys;')
  }
}
