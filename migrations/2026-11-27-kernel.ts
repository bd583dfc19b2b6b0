import { Migration } from '@mikro-orm/migrations'

// The kernel schema. Tenancy metadata (partners, tenants) and identities (users, sessions,
// signing keys) are global; everything an organisation owns carries tenant_id and is guarded
// by row-level security. The "organisation" behind tenant_id is a tenant, a partner, or the
// platform itself (the all-zero id), so partners and the platform own their memberships,
// keys and audit chain exactly like tenants do.
//
// Roles (NOLOGIN, own nothing, no BYPASSRLS):
//   trellis_app      every request transaction runs as it (SET LOCAL ROLE); may only INSERT
//                    and SELECT audit rows.
//   trellis_auth     owns the narrow SECURITY DEFINER look-ups that authentication needs
//                    before a tenant is known (API key by id, a user's memberships).
//   trellis_auditor  the audit sealer: may fill seq/prev_hash/hash of unsealed rows only.
//   trellis_bootstrap writes the built-in roles (defined in code) at start; nothing else.
export class Migration20261127000001Kernel extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
do $$ begin
  begin create role trellis_app nologin nosuperuser nobypassrls; exception when duplicate_object or unique_violation then null; end;
  begin create role trellis_auth nologin nosuperuser nobypassrls; exception when duplicate_object or unique_violation then null; end;
  begin create role trellis_auditor nologin nosuperuser nobypassrls; exception when duplicate_object or unique_violation then null; end;
  begin create role trellis_bootstrap nologin nosuperuser nobypassrls; exception when duplicate_object or unique_violation then null; end;
end $$;`)
    this.addSql(`grant usage on schema public to trellis_app, trellis_auth, trellis_auditor, trellis_bootstrap;`)
    // The migrating owner hands the definer functions to trellis_auth below; PostgreSQL lets
    // it only as a member of that role, with the role able to create in the schema.
    this.addSql(`do $$ begin execute format('grant trellis_auth to %I', current_user); end $$;`)
    this.addSql(`grant create on schema public to trellis_auth;`)
    // Kernel processes check at start that no migration is pending (names only, nothing secret).
    this.addSql(`grant select on trellis_migrations to public;`)
    this.addSql(
      `create or replace function trellis_current_tenant() returns uuid language sql stable as $$ select nullif(current_setting('app.tenant_id', true), '')::uuid $$;`,
    )

    this.addSql(`
create table partners (
  id uuid primary key,
  name text not null,
  slug text not null unique,
  status text not null default 'active' check (status in ('active', 'suspended')),
  branding jsonb not null default '{}',
  created_at timestamptz not null default now()
);`)
    this.addSql(`
create table tenants (
  id uuid primary key,
  name text not null,
  slug text not null unique,
  partner_id uuid references partners(id),
  status text not null default 'active' check (status in ('active', 'suspended')),
  created_at timestamptz not null default now(),
  suspended_at timestamptz
);`)
    this.addSql(`create index tenants_partner_idx on tenants (partner_id, id);`)
    // Every request transaction asks this; plpgsql keeps its plans per session, so it costs two
    // index look-ups and no planning.
    this.addSql(`
create function trellis_org_block(p_org uuid) returns text language plpgsql stable as $$
declare t_status text; p_status text;
begin
  select t.status, p.status into t_status, p_status from tenants t left join partners p on p.id = t.partner_id where t.id = p_org;
  if not found then
    select p.status into p_status from partners p where p.id = p_org;
    return case when p_status = 'suspended' then 'partner_self' end;
  end if;
  return case when t_status = 'suspended' then 'tenant' when p_status = 'suspended' then 'partner' end;
end $$;`)
    this.addSql(`
create table users (
  id uuid primary key,
  email text not null,
  name text not null,
  password_hash text,
  status text not null default 'active' check (status in ('active', 'disabled')),
  created_at timestamptz not null default now()
);`)
    this.addSql(`create unique index users_email_idx on users (lower(email));`)
    this.addSql(`
create table sessions (
  id uuid primary key,
  user_id uuid not null references users(id) on delete cascade,
  tenant_id uuid not null,
  token_hash text not null unique,
  family_id uuid not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at timestamptz,
  revoked_at timestamptz
);`)
    this.addSql(`create index sessions_family_idx on sessions (family_id);`)
    this.addSql(`
create table signing_keys (
  kid text primary key,
  alg text not null,
  public_jwk jsonb not null,
  private_key_enc text not null,
  created_at timestamptz not null default now(),
  retired_at timestamptz
);`)

    this.addSql(`
create table roles (
  id uuid primary key,
  tenant_id uuid,
  name text not null,
  description text not null default '',
  permissions text[] not null,
  builtin boolean not null default false,
  created_at timestamptz not null default now()
);`)
    this.addSql(
      `create unique index roles_name_idx on roles (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid), name) where not builtin;`,
    )
    this.addSql(`create unique index roles_builtin_idx on roles (name) where builtin;`)
    this.addSql(`
create table memberships (
  id uuid primary key,
  tenant_id uuid not null,
  org_kind text not null check (org_kind in ('platform', 'partner', 'tenant')),
  user_id uuid not null references users(id) on delete cascade,
  role_id uuid not null references roles(id),
  created_at timestamptz not null default now(),
  unique (tenant_id, user_id)
);`)
    this.addSql(`create index memberships_user_idx on memberships (user_id);`)
    this.addSql(`
create table api_keys (
  id uuid primary key,
  tenant_id uuid not null,
  org_kind text not null check (org_kind in ('platform', 'partner', 'tenant')),
  name text not null,
  secret_hash text not null,
  permissions text[] not null,
  created_by uuid not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz,
  revoked_at timestamptz
);`)
    this.addSql(`create index api_keys_tenant_idx on api_keys (tenant_id, id);`)
    this.addSql(`
create table audit_log (
  id uuid primary key,
  tenant_id uuid not null,
  seq bigint,
  at timestamptz not null,
  actor_kind text not null,
  actor_id text not null,
  action text not null,
  target_kind text,
  target_id text,
  data jsonb not null default '{}',
  ip text,
  request_id text,
  prev_hash text,
  hash text,
  unique (tenant_id, seq)
);`)
    this.addSql(`create index audit_log_tenant_idx on audit_log (tenant_id, id);`)
    this.addSql(`create index audit_log_unsealed_idx on audit_log (tenant_id, id) where hash is null;`)
    // Sealing fills seq/prev_hash/hash exactly once; nothing else about an entry may change,
    // and entries are never deleted (a superuser can still disable this: verify catches it).
    this.addSql(`
create function trellis_audit_guard() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE' then raise exception 'audit entries are append-only' using errcode = 'insufficient_privilege'; end if;
  if old.hash is not null or new.id <> old.id or new.tenant_id <> old.tenant_id or new.at <> old.at
     or new.actor_kind <> old.actor_kind or new.actor_id <> old.actor_id or new.action <> old.action
     or new.target_kind is distinct from old.target_kind or new.target_id is distinct from old.target_id
     or new.data <> old.data or new.ip is distinct from old.ip or new.request_id is distinct from old.request_id then
    raise exception 'audit entries are append-only' using errcode = 'insufficient_privilege';
  end if;
  return new;
end $$;`)
    this.addSql(
      `create trigger audit_log_guard before update or delete on audit_log for each row execute function trellis_audit_guard();`,
    )
    this.addSql(`
create table idempotency_keys (
  tenant_id uuid not null,
  principal text not null,
  key text not null,
  request_hash text not null,
  status_code int,
  response_body text,
  content_type text,
  created_at timestamptz not null default now(),
  primary key (tenant_id, principal, key)
);`)

    // Row-level security on everything an organisation owns. A transaction that forgot to
    // set app.tenant_id sees (and may write) nothing.
    for (const table of ['roles', 'memberships', 'api_keys', 'audit_log', 'idempotency_keys']) {
      this.addSql(`alter table ${table} enable row level security;`)
      this.addSql(`alter table ${table} force row level security;`)
    }
    this.addSql(
      `create policy roles_read on roles for select to trellis_app using (tenant_id is null or tenant_id = trellis_current_tenant());`,
    )
    this.addSql(
      `create policy roles_write on roles for all to trellis_app using (tenant_id = trellis_current_tenant() and not builtin) with check (tenant_id = trellis_current_tenant() and not builtin);`,
    )
    for (const table of ['memberships', 'api_keys', 'idempotency_keys']) {
      this.addSql(
        `create policy ${table}_tenant on ${table} for all to trellis_app using (tenant_id = trellis_current_tenant()) with check (tenant_id = trellis_current_tenant());`,
      )
    }
    this.addSql(
      `create policy audit_read on audit_log for select to trellis_app using (tenant_id = trellis_current_tenant());`,
    )
    this.addSql(
      `create policy audit_append on audit_log for insert to trellis_app with check (tenant_id = trellis_current_tenant() and seq is null and hash is null and prev_hash is null);`,
    )
    // The cross-tenant policies below also demand that the role is really in force (SET ROLE),
    // not merely inherited by a login that is a member of it.
    this.addSql(
      `create policy audit_seal_read on audit_log for select to trellis_auditor using (current_user = 'trellis_auditor');`,
    )
    this.addSql(
      `create policy audit_seal on audit_log for update to trellis_auditor using (hash is null and current_user = 'trellis_auditor') with check (hash is not null);`,
    )
    this.addSql(
      `create policy roles_builtin on roles for all to trellis_bootstrap using (builtin and tenant_id is null and current_user = 'trellis_bootstrap') with check (builtin and tenant_id is null);`,
    )
    this.addSql(`grant select, insert, update on roles to trellis_bootstrap;`)
    this.addSql(`grant select on tenants, partners to trellis_bootstrap;`)
    for (const table of ['roles', 'memberships', 'api_keys']) {
      this.addSql(
        `create policy ${table}_auth_lookup on ${table} for select to trellis_auth using (current_user = 'trellis_auth');`,
      )
    }

    this.addSql(`grant select, insert, update on partners, tenants, users, sessions to trellis_app;`)
    this.addSql(`grant select, insert on signing_keys to trellis_app;`)
    this.addSql(`grant update (retired_at) on signing_keys to trellis_app;`)
    this.addSql(
      `grant select, insert, update, delete on roles, memberships, api_keys, idempotency_keys to trellis_app;`,
    )
    this.addSql(`grant select, insert on audit_log to trellis_app;`)
    this.addSql(`grant select on audit_log, tenants, partners to trellis_auditor;`)
    this.addSql(`grant update (seq, prev_hash, hash) on audit_log to trellis_auditor;`)
    this.addSql(`grant select on roles, memberships, api_keys to trellis_auth;`)

    // Authentication look-ups that must run before the tenant is known. Each returns only
    // what sign-in needs and runs as trellis_auth, which may read these rows and nothing else.
    this.addSql(`
create function trellis_auth_api_key(p_id uuid) returns table (id uuid, tenant_id uuid, org_kind text, secret_hash text, permissions text[], created_by uuid, expires_at timestamptz, revoked_at timestamptz)
language sql stable security definer set search_path = public as $$
  select k.id, k.tenant_id, k.org_kind, k.secret_hash, k.permissions, k.created_by, k.expires_at, k.revoked_at from api_keys k where k.id = p_id
$$;`)
    this.addSql(`
create function trellis_auth_memberships(p_user uuid) returns table (tenant_id uuid, org_kind text, role_name text, permissions text[])
language sql stable security definer set search_path = public as $$
  select m.tenant_id, m.org_kind, r.name, r.permissions from memberships m join roles r on r.id = m.role_id where m.user_id = p_user order by m.created_at
$$;`)
    this.addSql(`alter function trellis_auth_api_key(uuid) owner to trellis_auth;`)
    this.addSql(`alter function trellis_auth_memberships(uuid) owner to trellis_auth;`)
    this.addSql(`revoke all on function trellis_auth_api_key(uuid), trellis_auth_memberships(uuid) from public;`)
    this.addSql(`grant execute on function trellis_auth_api_key(uuid), trellis_auth_memberships(uuid) to trellis_app;`)
  }

  override async down(): Promise<void> {
    this.addSql(`drop function if exists trellis_auth_api_key(uuid), trellis_auth_memberships(uuid);`)
    this.addSql(
      `drop table if exists idempotency_keys, audit_log, api_keys, memberships, roles, signing_keys, sessions, users, tenants, partners cascade;`,
    )
    this.addSql(`drop function if exists trellis_audit_guard(), trellis_current_tenant(), trellis_org_block(uuid);`)
  }
}
