import { Migration } from '@mikro-orm/migrations'

// Single sign-on with OpenID Connect (ADR 0042). Every table is the organisation's own, under
// row-level security like every tenant table; the kernel reaches them in the organisation's
// transaction (the organisation is named by the sign-in URL, the state and the hand-over code).
//
// sso_providers: an organisation's identity provider — issuer, client id, the client secret
//   sealed with the kernel's secret box, the e-mail domains it may vouch for, how a claim maps to
//   a role, and whether password sign-ins are refused (sso_only).
// sso_logins: a sign-in in flight — the state (hashed), the nonce, the PKCE verifier (sealed),
//   the hash of the browser-binding cookie, where to return; single-use, expiring in minutes.
// sso_handoffs: the one-time code the browser brings back to the console, exchanged once (within
//   a minute) by POST for the session's tokens; only its hash is stored.
export class Migration20261206000027IdentitySso extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table sso_providers (
  tenant_id uuid primary key,
  issuer text not null,
  client_id text not null,
  client_secret_sealed text not null,
  allowed_domains text[] not null,
  role_claim text,
  role_map jsonb not null default '{}',
  default_role text not null,
  sso_only boolean not null default false,
  enabled boolean not null default true,
  updated_at timestamptz not null default now()
);`)
    this.addSql(`
create table sso_logins (
  id uuid primary key,
  tenant_id uuid not null,
  state_hash text not null unique,
  nonce text not null,
  verifier_sealed text not null,
  browser_hash text not null,
  return_to text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at timestamptz
);`)
    this.addSql(`
create table sso_handoffs (
  id uuid primary key,
  tenant_id uuid not null,
  code_hash text not null,
  user_id uuid not null references users(id) on delete cascade,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at timestamptz
);`)
    for (const table of ['sso_providers', 'sso_logins', 'sso_handoffs']) {
      this.addSql(`alter table ${table} enable row level security;`)
      this.addSql(`alter table ${table} force row level security;`)
      this.addSql(
        `create policy ${table}_tenant on ${table} for all to trellis_app using (tenant_id = trellis_current_tenant()) with check (tenant_id = trellis_current_tenant());`,
      )
      this.addSql(`grant select, insert, update, delete on ${table} to trellis_app;`)
    }
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists sso_handoffs, sso_logins, sso_providers;`)
  }
}
