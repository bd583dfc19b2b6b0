import { Migration } from '@mikro-orm/migrations'

// SCIM 2.0 provisioning (ADR 0042, "SCIM"). An organisation's identity provider creates,
// deactivates and groups its people through /v1/scim/v2 with an API key holding users.manage.
//
// scim_users: the people the provider manages in this organisation and whether they are active
//   (deactivated people keep the row but lose the membership, their sessions and keys).
// scim_groups / scim_group_members: the provider's groups; a group whose name the organisation's
//   SSO role map knows gives its members that role.
// All tenant-owned, under row-level security.
export class Migration20261206000037IdentitySso extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table scim_users (
  tenant_id uuid not null,
  user_id uuid not null references users(id) on delete cascade,
  user_name text not null,
  display_name text,
  external_id text,
  given_name text,
  family_name text,
  active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, user_id)
);`)
    this.addSql(`
create table scim_groups (
  id uuid primary key,
  tenant_id uuid not null,
  display_name text not null,
  external_id text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);`)
    this.addSql(`create unique index scim_groups_name_idx on scim_groups (tenant_id, lower(display_name));`)
    this.addSql(`
create table scim_group_members (
  tenant_id uuid not null,
  group_id uuid not null references scim_groups(id) on delete cascade,
  user_id uuid not null references users(id) on delete cascade,
  primary key (group_id, user_id)
);`)
    for (const table of ['scim_users', 'scim_groups', 'scim_group_members']) {
      this.addSql(`alter table ${table} enable row level security;`)
      this.addSql(`alter table ${table} force row level security;`)
      this.addSql(
        `create policy ${table}_tenant on ${table} for all to trellis_app using (tenant_id = trellis_current_tenant()) with check (tenant_id = trellis_current_tenant());`,
      )
      this.addSql(`grant select, insert, update, delete on ${table} to trellis_app;`)
    }
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists scim_group_members, scim_groups, scim_users;`)
  }
}
