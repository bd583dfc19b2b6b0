import { Migration } from '@mikro-orm/migrations'

// Multi-factor authentication with TOTP, and each organisation's sign-in policy (ADR 0041).
//
// mfa_factors and mfa_recovery_codes belong to an account, which is global: no tenant_id. Only
// the sign-in role reaches them (the kernel asks for the caller's own account only, by the id in
// a verified token or after its password was checked); the application role has no grant. The
// TOTP secret is sealed with the kernel's secret box; recovery codes are stored as SHA-256.
// last_step is the last time step accepted: a code is refused unless its step is later, so a
// code seen once (shoulder-surfed, replayed) never works again.
//
// org_identity_policies: one row per organisation that sets a policy (MFA required for password
// sign-ins). Tenant-owned, under row-level security like every tenant table.
export class Migration20261206000017IdentitySso extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table mfa_factors (
  user_id uuid primary key references users(id) on delete cascade,
  secret_sealed text not null,
  created_at timestamptz not null default now(),
  confirmed_at timestamptz,
  last_step bigint
);`)
    this.addSql(`
create table mfa_recovery_codes (
  id uuid primary key,
  user_id uuid not null references users(id) on delete cascade,
  code_hash text not null,
  used_at timestamptz
);`)
    this.addSql(`create index mfa_recovery_codes_user_idx on mfa_recovery_codes (user_id);`)
    for (const table of ['mfa_factors', 'mfa_recovery_codes']) {
      this.addSql(`alter table ${table} enable row level security;`)
      this.addSql(`alter table ${table} force row level security;`)
      this.addSql(
        `create policy ${table}_signin on ${table} for all to trellis_signin using (current_user = 'trellis_signin') with check (current_user = 'trellis_signin');`,
      )
      this.addSql(`grant select, insert, update, delete on ${table} to trellis_signin;`)
    }

    this.addSql(`
create table org_identity_policies (
  tenant_id uuid primary key,
  mfa_required boolean not null default false,
  updated_at timestamptz not null default now()
);`)
    this.addSql(`alter table org_identity_policies enable row level security;`)
    this.addSql(`alter table org_identity_policies force row level security;`)
    this.addSql(
      `create policy org_identity_policies_tenant on org_identity_policies for all to trellis_app using (tenant_id = trellis_current_tenant()) with check (tenant_id = trellis_current_tenant());`,
    )
    this.addSql(`grant select, insert, update on org_identity_policies to trellis_app;`)
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists org_identity_policies, mfa_recovery_codes, mfa_factors;`)
  }
}
