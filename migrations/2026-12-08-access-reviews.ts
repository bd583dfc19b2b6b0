import { Migration } from '@mikro-orm/migrations'

const TENANT = `nullif(current_setting('app.tenant_id', true), '')::uuid`

// Periodic access review (docs/governance.md, "Access review"): when an API key was last used,
// and the reviews that ask a tenant's admins to keep or remove memberships and keys not used for
// a while. A key's last use is written by authentication (before any tenant is known) through
// trellis_api_key_used, owned by trellis_auth: it sets that one column of that one key, at most
// once an hour, and nothing else.
export class Migration20261208000601AccessReviews extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table api_keys add column last_used_at timestamptz;`)
    this.addSql(
      `create policy api_keys_auth_used on api_keys for update to trellis_auth using (current_user = 'trellis_auth') with check (current_user = 'trellis_auth');`,
    )
    this.addSql(`grant update (last_used_at) on api_keys to trellis_auth;`)
    this.addSql(`
create function trellis_api_key_used(p_id uuid) returns void
language sql volatile security definer set search_path = public as $$
  update api_keys set last_used_at = now()
   where id = p_id and (last_used_at is null or last_used_at < now() - interval '1 hour')
$$;`)
    this.addSql(`alter function trellis_api_key_used(uuid) owner to trellis_auth;`)
    this.addSql(`revoke all on function trellis_api_key_used(uuid) from public;`)
    this.addSql(`grant execute on function trellis_api_key_used(uuid) to trellis_app;`)

    this.addSql(`
create table access_reviews (
  id uuid primary key,
  tenant_id uuid not null default ${TENANT},
  status text not null default 'open' check (status in ('open', 'completed')),
  stale_days int not null check (stale_days >= 1),
  opened_at timestamptz not null,
  due_at timestamptz not null,
  completed_at timestamptz,
  completed_by text
);`)
    // One open review per tenant: the next one is opened when it is completed.
    this.addSql(`create unique index access_reviews_open on access_reviews (tenant_id) where status = 'open';`)
    this.addSql(`create index access_reviews_tenant_idx on access_reviews (tenant_id, id desc);`)
    this.addSql(`
create table access_review_items (
  id uuid primary key,
  tenant_id uuid not null default ${TENANT},
  review_id uuid not null references access_reviews(id) on delete cascade,
  kind text not null check (kind in ('membership', 'api_key')),
  subject_id uuid not null,
  label text not null,
  detail jsonb not null default '{}',
  last_used_at timestamptz,
  decision text check (decision in ('keep', 'remove')),
  decided_by text,
  decided_at timestamptz
);`)
    this.addSql(`create index access_review_items_review_idx on access_review_items (tenant_id, review_id);`)
    for (const table of ['access_reviews', 'access_review_items']) {
      this.addSql(`alter table ${table} enable row level security;`)
      this.addSql(`alter table ${table} force row level security;`)
      this.addSql(
        `create policy ${table}_tenant on ${table} for all to trellis_app using (tenant_id = ${TENANT}) with check (tenant_id = ${TENANT});`,
      )
      // Reviews are decided, never deleted: they are evidence.
      this.addSql(`grant select, insert, update on ${table} to trellis_app;`)
    }
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists access_review_items, access_reviews;`)
    this.addSql(`drop function if exists trellis_api_key_used(uuid);`)
    this.addSql(`drop policy if exists api_keys_auth_used on api_keys;`)
    this.addSql(`alter table api_keys drop column if exists last_used_at;`)
  }
}
