import { Migration } from '@mikro-orm/migrations'

// The marketplace: which partner owns which scope, publishers' signing keys, the published
// artifacts (content-addressed), and partners' channel catalogs. Versions themselves are rows
// of plugin_versions (status checking → in_review → approved, or failed_checks / rejected;
// blocked by the kill switch).
//
// These are platform tables, not tenant data: every request transaction may read them (public
// keys, scopes and catalogs are public to signed-in callers), and a partner writes only its own
// rows (its transaction's organisation is the partner); artifacts are written by the platform
// transaction a publish runs in.
const PLATFORM = `'00000000-0000-0000-0000-000000000000'::uuid`

export class Migration20261130000001Marketplace extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table marketplace_scopes (
  scope text primary key check (scope ~ '^@[a-z0-9][a-z0-9-]*$'),
  partner_id uuid not null references partners(id),
  created_at timestamptz not null default now()
);`)
    this.addSql(`
create table marketplace_keys (
  id uuid primary key,
  partner_id uuid not null references partners(id),
  name text not null default '',
  public_key text not null,
  fingerprint text not null unique,
  status text not null default 'active' check (status in ('active', 'revoked')),
  created_at timestamptz not null default now(),
  revoked_at timestamptz
);`)
    this.addSql(`create index marketplace_keys_partner_idx on marketplace_keys (partner_id, created_at);`)
    this.addSql(`
create table marketplace_artifacts (
  sha256 text primary key,
  bytes bytea not null,
  size int not null,
  created_at timestamptz not null default now()
);`)
    this.addSql(`
create table marketplace_catalogs (
  partner_id uuid primary key references partners(id),
  display_name text not null default '',
  mode text not null default 'all' check (mode in ('all', 'allow_list')),
  plugins text[] not null default '{}',
  updated_at timestamptz not null default now()
);`)
    this.addSql(`create index plugin_versions_status_idx on plugin_versions (status, id);`)
    this.addSql(`create index plugin_installations_version_idx on plugin_installations (version_id);`)

    for (const table of ['marketplace_scopes', 'marketplace_keys', 'marketplace_artifacts', 'marketplace_catalogs']) {
      this.addSql(`alter table ${table} enable row level security;`)
      this.addSql(`alter table ${table} force row level security;`)
      this.addSql(`create policy ${table}_read on ${table} for select to trellis_app using (true);`)
    }
    for (const table of ['marketplace_scopes', 'marketplace_keys', 'marketplace_catalogs']) {
      this.addSql(
        `create policy ${table}_own on ${table} for all to trellis_app using (partner_id = trellis_current_tenant() or trellis_current_tenant() = ${PLATFORM}) with check (partner_id = trellis_current_tenant() or trellis_current_tenant() = ${PLATFORM});`,
      )
    }
    this.addSql(
      `create policy marketplace_artifacts_store on marketplace_artifacts for insert to trellis_app with check (trellis_current_tenant() = ${PLATFORM});`,
    )
    this.addSql(`grant select, insert, update, delete on marketplace_scopes, marketplace_catalogs to trellis_app;`)
    this.addSql(`grant select, insert on marketplace_keys to trellis_app;`)
    this.addSql(`grant update (status, revoked_at) on marketplace_keys to trellis_app;`)
    this.addSql(`grant select, insert on marketplace_artifacts to trellis_app;`)
    // Install counts across tenants for listings, without exposing which tenants.
    this.addSql(`
create function trellis_install_counts(p_names text[]) returns table (name text, installs bigint)
language sql stable security definer set search_path = public as $$
  select i.plugin, count(*) from plugin_installations i where i.plugin = any(p_names) and i.status = 'active' group by i.plugin
$$;`)
    this.addSql(
      `create policy plugin_installations_counts on plugin_installations for select to trellis_auth using (current_user = 'trellis_auth');`,
    )
    this.addSql(`grant select (plugin, status) on plugin_installations to trellis_auth;`)
    this.addSql(`alter function trellis_install_counts(text[]) owner to trellis_auth;`)
    this.addSql(`revoke all on function trellis_install_counts(text[]) from public;`)
    this.addSql(`grant execute on function trellis_install_counts(text[]) to trellis_app;`)
    // The kill switch tells every tenant running a blocked version: it writes their events.
    this.addSql(`
create function trellis_installations_of_version(p_version uuid) returns table (tenant_id uuid, installation_id uuid)
language sql stable security definer set search_path = public as $$
  select i.tenant_id, i.id from plugin_installations i where i.version_id = p_version
$$;`)
    this.addSql(`grant select (id, tenant_id, version_id) on plugin_installations to trellis_auth;`)
    this.addSql(`alter function trellis_installations_of_version(uuid) owner to trellis_auth;`)
    this.addSql(`revoke all on function trellis_installations_of_version(uuid) from public;`)
    this.addSql(`grant execute on function trellis_installations_of_version(uuid) to trellis_app;`)
  }

  override async down(): Promise<void> {
    this.addSql(`drop function if exists trellis_install_counts(text[]), trellis_installations_of_version(uuid);`)
    this.addSql(`drop policy if exists plugin_installations_counts on plugin_installations;`)
    this.addSql(`drop index if exists plugin_versions_status_idx, plugin_installations_version_idx;`)
    this.addSql(
      `drop table if exists marketplace_catalogs, marketplace_artifacts, marketplace_keys, marketplace_scopes cascade;`,
    )
  }
}
