import { Migration } from '@mikro-orm/migrations'

// Identity hardening (ADR 0014).
//
// trellis_signin (NOLOGIN, owns nothing, no BYPASSRLS) is the role of the sign-in path: it runs
// the look-ups made before an organisation is known — an account by its exact e-mail (id,
// password hash, status: never a list), an API key by id, an invitation by id, a user's
// memberships everywhere, a refresh token by its hash — and nothing else. The application role
// can no longer call them; its own memberships look-up answers within the organisation in force.
//
// users and sessions come under row-level security: the application role sees an account only
// while it is a member of the organisation in force, never its password hash (column grants),
// and sees the organisation's own sessions without their refresh-token hashes.
//
// invitations: how a person joins an organisation. An admin invites an address; the person
// accepts with a one-time token (stored as its SHA-256, expiring).
export class Migration20261205000001IdentityHardening extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
do $$ begin
  begin create role trellis_signin nologin nosuperuser nobypassrls; exception when duplicate_object or unique_violation then null; end;
end $$;`)
    this.addSql(`grant usage on schema public to trellis_signin;`)
    // Every transaction asks trellis_org_block, which reads these two.
    this.addSql(`grant select on tenants, partners to trellis_signin;`)

    // users: visible to the application role only as members of the organisation in force.
    this.addSql(`alter table users enable row level security;`)
    this.addSql(`alter table users force row level security;`)
    this.addSql(
      `create policy users_member_read on users for select to trellis_app using (exists (select 1 from memberships m where m.user_id = users.id and m.tenant_id = trellis_current_tenant()));`,
    )
    this.addSql(
      `create policy users_member_update on users for update to trellis_app using (exists (select 1 from memberships m where m.user_id = users.id and m.tenant_id = trellis_current_tenant())) with check (true);`,
    )
    // A new account is created inside the organisation it joins (an accepted invitation, a new organisation's first admin).
    this.addSql(
      `create policy users_create on users for insert to trellis_app with check (trellis_current_tenant() is not null);`,
    )
    this.addSql(
      `create policy users_signin_read on users for select to trellis_signin using (current_user = 'trellis_signin');`,
    )
    this.addSql(
      `create policy users_auth_lookup on users for select to trellis_auth using (current_user = 'trellis_auth');`,
    )
    this.addSql(`revoke all on users from trellis_app;`)
    this.addSql(`grant select (id, email, name, status, created_at) on users to trellis_app;`)
    this.addSql(`grant insert (id, email, name, password_hash) on users to trellis_app;`)
    this.addSql(`grant update (name, password_hash) on users to trellis_app;`)
    this.addSql(`grant select (id, status) on users to trellis_signin;`)
    this.addSql(`grant select (id, email, password_hash, status) on users to trellis_auth;`)

    // sessions: the organisation's own, without refresh-token hashes, for the application role;
    // looked up by hash only by the sign-in role.
    this.addSql(`alter table sessions enable row level security;`)
    this.addSql(`alter table sessions force row level security;`)
    this.addSql(
      `create policy sessions_tenant on sessions for all to trellis_app using (tenant_id = trellis_current_tenant()) with check (tenant_id = trellis_current_tenant());`,
    )
    this.addSql(
      `create policy sessions_signin_read on sessions for select to trellis_signin using (current_user = 'trellis_signin');`,
    )
    this.addSql(
      `create policy sessions_signin_update on sessions for update to trellis_signin using (current_user = 'trellis_signin') with check (current_user = 'trellis_signin');`,
    )
    this.addSql(`revoke all on sessions from trellis_app;`)
    this.addSql(
      `grant select (id, user_id, tenant_id, family_id, created_at, expires_at, used_at, revoked_at) on sessions to trellis_app;`,
    )
    this.addSql(`grant insert on sessions to trellis_app;`)
    this.addSql(`grant update (revoked_at) on sessions to trellis_app;`)
    this.addSql(`grant select on sessions to trellis_signin;`)
    this.addSql(`grant update (used_at, revoked_at) on sessions to trellis_signin;`)
    // Every process reads an organisation's recently ended sessions with its status.
    this.addSql(`create index sessions_revoked_idx on sessions (tenant_id, revoked_at) where revoked_at is not null;`)

    this.addSql(`
create table invitations (
  id uuid primary key,
  tenant_id uuid not null,
  org_kind text not null check (org_kind in ('platform', 'partner', 'tenant')),
  email text not null,
  role_id uuid not null references roles(id) on delete cascade,
  token_hash text not null,
  invited_by uuid not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  accepted_at timestamptz,
  accepted_by uuid,
  revoked_at timestamptz
);`)
    this.addSql(`create index invitations_tenant_idx on invitations (tenant_id, id);`)
    this.addSql(
      `create unique index invitations_pending_idx on invitations (tenant_id, lower(email)) where accepted_at is null and revoked_at is null;`,
    )
    this.addSql(`alter table invitations enable row level security;`)
    this.addSql(`alter table invitations force row level security;`)
    this.addSql(
      `create policy invitations_tenant on invitations for all to trellis_app using (tenant_id = trellis_current_tenant()) with check (tenant_id = trellis_current_tenant());`,
    )
    this.addSql(
      `create policy invitations_auth_lookup on invitations for select to trellis_auth using (current_user = 'trellis_auth');`,
    )
    this.addSql(`grant select, insert on invitations to trellis_app;`)
    this.addSql(`grant update (accepted_at, accepted_by, revoked_at) on invitations to trellis_app;`)
    this.addSql(`grant select on invitations to trellis_auth;`)

    // The sign-in look-ups: exactly one row for exactly what was asked, never a list.
    this.addSql(`
create function trellis_signin_account(p_email text) returns table (id uuid, password_hash text, status text)
language sql stable security definer set search_path = public as $$
  select u.id, u.password_hash, u.status from users u where lower(u.email) = lower(p_email)
$$;`)
    this.addSql(`
create function trellis_auth_invitation(p_id uuid) returns table (id uuid, tenant_id uuid, org_kind text, email text, role_id uuid, token_hash text, expires_at timestamptz, accepted_at timestamptz, revoked_at timestamptz)
language sql stable security definer set search_path = public as $$
  select i.id, i.tenant_id, i.org_kind, i.email, i.role_id, i.token_hash, i.expires_at, i.accepted_at, i.revoked_at from invitations i where i.id = p_id
$$;`)
    // Every organisation a user belongs to, for sign-in alone. The application role's look-up
    // answers within the organisation in force (the platform, which reviews partners' work, sees all).
    this.addSql(`
create function trellis_signin_memberships(p_user uuid) returns table (tenant_id uuid, org_kind text, role_name text, permissions text[])
language sql stable security definer set search_path = public as $$
  select m.tenant_id, m.org_kind, r.name, r.permissions from memberships m join roles r on r.id = m.role_id where m.user_id = p_user order by m.created_at
$$;`)
    this.addSql(`
create or replace function trellis_auth_memberships(p_user uuid) returns table (tenant_id uuid, org_kind text, role_name text, permissions text[])
language sql stable security definer set search_path = public as $$
  select m.tenant_id, m.org_kind, r.name, r.permissions from memberships m join roles r on r.id = m.role_id
   where m.user_id = p_user and (m.tenant_id = trellis_current_tenant() or trellis_current_tenant() = '00000000-0000-0000-0000-000000000000'::uuid)
   order by m.created_at
$$;`)
    this.addSql(`alter function trellis_signin_memberships(uuid) owner to trellis_auth;`)
    this.addSql(`alter function trellis_signin_account(text) owner to trellis_auth;`)
    this.addSql(`alter function trellis_auth_invitation(uuid) owner to trellis_auth;`)
    this.addSql(
      `revoke all on function trellis_signin_account(text), trellis_auth_invitation(uuid), trellis_signin_memberships(uuid) from public;`,
    )
    // The API key look-up returns the key's secret hash: the sign-in role's alone from now on.
    this.addSql(`revoke execute on function trellis_auth_api_key(uuid) from trellis_app;`)
    this.addSql(
      `grant execute on function trellis_signin_account(text), trellis_auth_invitation(uuid), trellis_auth_api_key(uuid), trellis_signin_memberships(uuid) to trellis_signin;`,
    )
  }

  override async down(): Promise<void> {
    this.addSql(
      `drop function if exists trellis_signin_account(text), trellis_auth_invitation(uuid), trellis_signin_memberships(uuid);`,
    )
    this.addSql(`
create or replace function trellis_auth_memberships(p_user uuid) returns table (tenant_id uuid, org_kind text, role_name text, permissions text[])
language sql stable security definer set search_path = public as $$
  select m.tenant_id, m.org_kind, r.name, r.permissions from memberships m join roles r on r.id = m.role_id where m.user_id = p_user order by m.created_at
$$;`)
    this.addSql(`grant execute on function trellis_auth_api_key(uuid) to trellis_app;`)
    this.addSql(`drop table if exists invitations;`)
    this.addSql(`drop index if exists sessions_revoked_idx;`)
    for (const table of ['users', 'sessions']) {
      this.addSql(`drop policy if exists ${table}_signin_read on ${table};`)
      this.addSql(`alter table ${table} no force row level security;`)
      this.addSql(`alter table ${table} disable row level security;`)
    }
    this.addSql(
      `drop policy if exists users_member_read on users; drop policy if exists users_member_update on users; drop policy if exists users_create on users; drop policy if exists users_auth_lookup on users;`,
    )
    this.addSql(
      `drop policy if exists sessions_tenant on sessions; drop policy if exists sessions_signin_update on sessions;`,
    )
    this.addSql(`revoke all on users, sessions from trellis_signin, trellis_auth;`)
    this.addSql(`grant select, insert, update on users, sessions to trellis_app;`)
    this.addSql(`revoke all on tenants, partners from trellis_signin;`)
  }
}
