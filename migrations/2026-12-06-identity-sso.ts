import { Migration } from '@mikro-orm/migrations'

// Account basics (ADR 0040).
//
// password_resets: a forgotten password is reset with a single-use, expiring token sent by
// e-mail; only its SHA-256 is stored. An account is global (it belongs to no organisation), so
// the table carries no tenant_id: nobody reads it directly — it is under row-level security
// with no policy for the application or sign-in roles. The sign-in role reaches it through two
// SECURITY DEFINER functions owned by trellis_auth, each doing exactly one thing:
//   trellis_password_reset_request  for an active account with exactly this e-mail, replaces
//                                   any unused token with a new one; answers the account id
//                                   (nothing when there is no such account).
//   trellis_password_reset_complete spends a token once (unexpired, unused, matching hash) and
//                                   sets the account's new password hash; answers the account id.
// The sign-in role may already end sessions by user (sessions_signin_update), which a reset does
// in the same transaction.
export class Migration20261206000007IdentitySso extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table password_resets (
  id uuid primary key,
  user_id uuid not null references users(id) on delete cascade,
  token_hash text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at timestamptz
);`)
    this.addSql(`create index password_resets_user_idx on password_resets (user_id) where used_at is null;`)
    this.addSql(`alter table password_resets enable row level security;`)
    this.addSql(`alter table password_resets force row level security;`)
    this.addSql(
      `create policy password_resets_auth on password_resets for all to trellis_auth using (current_user = 'trellis_auth') with check (current_user = 'trellis_auth');`,
    )
    this.addSql(`grant select, insert, update on password_resets to trellis_auth;`)
    // The reset function sets the new hash: trellis_auth may write that one column, on any account.
    this.addSql(
      `create policy users_auth_password on users for update to trellis_auth using (current_user = 'trellis_auth') with check (current_user = 'trellis_auth');`,
    )
    this.addSql(`grant update (password_hash) on users to trellis_auth;`)

    this.addSql(`
create function trellis_password_reset_request(p_email text, p_id uuid, p_token_hash text, p_ttl_minutes int) returns table (user_id uuid)
language plpgsql volatile security definer set search_path = public as $$
declare v_user uuid;
begin
  select u.id into v_user from users u where lower(u.email) = lower(p_email) and u.status = 'active';
  if v_user is null then return; end if;
  update password_resets r set used_at = now() where r.user_id = v_user and r.used_at is null;
  insert into password_resets (id, user_id, token_hash, expires_at)
    values (p_id, v_user, p_token_hash, now() + make_interval(mins => least(greatest(p_ttl_minutes, 1), 1440)));
  return query select v_user;
end $$;`)
    this.addSql(`
create function trellis_password_reset_complete(p_id uuid, p_token_hash text, p_password_hash text) returns table (user_id uuid)
language plpgsql volatile security definer set search_path = public as $$
declare v_user uuid;
begin
  update password_resets r set used_at = now()
   where r.id = p_id and r.token_hash = p_token_hash and r.used_at is null and r.expires_at > now()
   returning r.user_id into v_user;
  if v_user is null then return; end if;
  update users u set password_hash = p_password_hash where u.id = v_user and u.status = 'active';
  if not found then raise exception 'account disabled' using errcode = 'P0001'; end if;
  return query select v_user;
end $$;`)
    this.addSql(`alter function trellis_password_reset_request(text, uuid, text, int) owner to trellis_auth;`)
    this.addSql(`alter function trellis_password_reset_complete(uuid, text, text) owner to trellis_auth;`)
    this.addSql(
      `revoke all on function trellis_password_reset_request(text, uuid, text, int), trellis_password_reset_complete(uuid, text, text) from public;`,
    )
    this.addSql(
      `grant execute on function trellis_password_reset_request(text, uuid, text, int), trellis_password_reset_complete(uuid, text, text) to trellis_signin;`,
    )
  }

  override async down(): Promise<void> {
    this.addSql(
      `drop function if exists trellis_password_reset_request(text, uuid, text, int), trellis_password_reset_complete(uuid, text, text);`,
    )
    this.addSql(`drop policy if exists users_auth_password on users;`)
    this.addSql(`revoke update (password_hash) on users from trellis_auth;`)
    this.addSql(`drop table if exists password_resets;`)
  }
}
