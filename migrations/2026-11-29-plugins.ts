import { Migration } from '@mikro-orm/migrations'

// Plugins: the versions the kernel can run, each tenant's installations, the records of plugin
// collections, and per-invocation records.
//
// plugin_versions is the platform's catalogue (no tenant data): every request transaction may
// read it, only a transaction in the platform organisation may add to it or change it.
// plugin_installations, plugin_records and plugin_invocations are tenant-owned like everything
// else: trellis_app sees its own tenant's rows only.
//
// Declared collection indexes are real partial expression indexes on plugin_records, created by
// trellis_plugin_index (SECURITY DEFINER, owned by the migrating owner, which alone may create
// indexes): it takes only names matching strict patterns and builds the DDL with format(%I, %L).
// Publishers read their plugins' invocations across tenants through trellis_plugin_invocations,
// owned by trellis_auth, which returns no tenant, caller or log columns.
const PLATFORM = `'00000000-0000-0000-0000-000000000000'::uuid`

export class Migration20261129000001Plugins extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table plugin_versions (
  id uuid primary key,
  name text not null,
  version text not null,
  sha256 text not null,
  manifest jsonb not null,
  code text not null,
  source_map text,
  publisher_id uuid references partners(id),
  status text not null default 'checking' check (status in ('checking', 'failed_checks', 'in_review', 'approved', 'rejected', 'blocked')),
  created_at timestamptz not null default now(),
  created_by text not null,
  -- Marketplace: the signed artifact it came from, its checks and its review.
  artifact_sha256 text,
  signature text,
  key_id uuid,
  changelog text not null default '',
  checks jsonb not null default '[]',
  review jsonb,
  blocked_reason text,
  unique (name, version)
);`)
    this.addSql(`
create table plugin_installations (
  id uuid primary key,
  tenant_id uuid not null default trellis_current_tenant(),
  plugin text not null,
  mount text not null,
  version_id uuid not null references plugin_versions(id),
  capabilities text[] not null,
  settings jsonb not null default '{}',
  secrets_enc text,
  secret_names text[] not null default '{}',
  status text not null default 'active' check (status in ('active', 'disabled')),
  installed_by text not null,
  -- Versions installed before, newest last ({versionId, version, at}): what rollback goes back to.
  history jsonb not null default '[]',
  -- An upgrade that asks for more capabilities waits here for the tenant's consent.
  pending_version_id uuid references plugin_versions(id),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, plugin),
  unique (tenant_id, mount)
);`)
    this.addSql(`
create table plugin_records (
  tenant_id uuid not null default trellis_current_tenant(),
  plugin text not null,
  collection text not null,
  id uuid not null,
  version int not null default 1,
  data jsonb not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, plugin, collection, id)
);`)
    this.addSql(`
create table plugin_invocations (
  id uuid primary key,
  tenant_id uuid not null default trellis_current_tenant(),
  installation_id uuid not null,
  plugin text not null,
  version text not null,
  entry_kind text not null,
  entry_name text not null,
  caller_kind text not null,
  caller_id text not null,
  started_at timestamptz not null,
  wall_ms real not null,
  cpu_ms real not null,
  host_calls int not null,
  outcome text not null,
  error_code text,
  logs jsonb not null default '[]'
);`)
    this.addSql(
      `create index plugin_invocations_installation_idx on plugin_invocations (tenant_id, installation_id, id);`,
    )
    this.addSql(`create index plugin_invocations_plugin_idx on plugin_invocations (plugin, id);`)

    for (const table of ['plugin_versions', 'plugin_installations', 'plugin_records', 'plugin_invocations']) {
      this.addSql(`alter table ${table} enable row level security;`)
      this.addSql(`alter table ${table} force row level security;`)
    }
    this.addSql(`create policy plugin_versions_read on plugin_versions for select to trellis_app using (true);`)
    this.addSql(
      `create policy plugin_versions_write on plugin_versions for insert to trellis_app with check (trellis_current_tenant() = ${PLATFORM});`,
    )
    this.addSql(
      `create policy plugin_versions_update on plugin_versions for update to trellis_app using (trellis_current_tenant() = ${PLATFORM}) with check (trellis_current_tenant() = ${PLATFORM});`,
    )
    this.addSql(`grant select, insert on plugin_versions to trellis_app;`)
    this.addSql(`grant update (status, checks, review, blocked_reason) on plugin_versions to trellis_app;`)
    for (const table of ['plugin_installations', 'plugin_records', 'plugin_invocations']) {
      this.addSql(
        `create policy ${table}_tenant on ${table} for all to trellis_app using (tenant_id = trellis_current_tenant()) with check (tenant_id = trellis_current_tenant());`,
      )
    }
    this.addSql(`grant select, insert, update, delete on plugin_installations, plugin_records to trellis_app;`)
    this.addSql(`grant select, insert on plugin_invocations to trellis_app;`)
    // The dispatcher asks whether any installation subscribes to events at all.
    this.addSql(
      `create policy plugin_installations_events on plugin_installations for select to trellis_events using (current_user = 'trellis_events');`,
    )
    this.addSql(`grant select (id, tenant_id, version_id, status) on plugin_installations to trellis_events;`)
    this.addSql(`create policy plugin_versions_events on plugin_versions for select to trellis_events using (true);`)
    this.addSql(`grant select (id, manifest) on plugin_versions to trellis_events;`)

    this.addSql(`
create function trellis_plugin_index(p_plugin text, p_collection text, p_fields text[], p_unique boolean) returns text
language plpgsql security definer set search_path = public as $$
declare
  f text;
  cols text := 'tenant_id';
  idx text;
begin
  if p_plugin !~ '^@[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*$' then raise exception 'invalid plugin name' using errcode = '22023'; end if;
  if p_collection !~ '^[A-Za-z_][A-Za-z0-9_-]{0,63}$' then raise exception 'invalid collection name' using errcode = '22023'; end if;
  if coalesce(array_length(p_fields, 1), 0) = 0 or array_length(p_fields, 1) > 8 then raise exception 'an index has 1 to 8 fields' using errcode = '22023'; end if;
  foreach f in array p_fields loop
    if f !~ '^[A-Za-z_][A-Za-z0-9_]{0,63}$' then raise exception 'invalid field name' using errcode = '22023'; end if;
    cols := cols || case f
      when 'id' then ', id' when 'version' then ', version' when 'createdAt' then ', created_at' when 'updatedAt' then ', updated_at'
      else format(', (data -> %L)', f) end;
  end loop;
  idx := 'plugin_idx_' || substr(md5(p_plugin || '|' || p_collection || '|' || array_to_string(p_fields, ',') || '|' || p_unique::text), 1, 20);
  execute format('create %s index if not exists %I on plugin_records (%s) where plugin = %L and collection = %L',
    case when p_unique then 'unique' else '' end, idx, cols, p_plugin, p_collection);
  return idx;
end $$;`)
    // Row-level security lets only leakproof operators into an index condition; jsonb's field
    // access and equality raise no data-dependent errors, so declaring them leakproof lets the
    // declared indexes narrow queries under RLS. Only a superuser may: elsewhere the indexes
    // still narrow by tenant, plugin and collection (see docs/operations.md).
    this.addSql(`do $$ begin
  if (select rolsuper from pg_roles where rolname = current_user) then
    alter function jsonb_object_field(jsonb, text) leakproof;
    alter function jsonb_eq(jsonb, jsonb) leakproof;
  end if;
end $$;`)
    this.addSql(`revoke all on function trellis_plugin_index(text, text, text[], boolean) from public;`)
    this.addSql(`grant execute on function trellis_plugin_index(text, text, text[], boolean) to trellis_app;`)

    this.addSql(
      `create policy plugin_invocations_publisher on plugin_invocations for select to trellis_auth using (current_user = 'trellis_auth');`,
    )
    this.addSql(`grant select on plugin_invocations to trellis_auth;`)
    this.addSql(`
create function trellis_plugin_invocations(p_plugin text, p_before uuid, p_limit int)
returns table (id uuid, version text, entry_kind text, entry_name text, started_at timestamptz, wall_ms real, cpu_ms real, host_calls int, outcome text, error_code text)
language sql stable security definer set search_path = public as $$
  select i.id, i.version, i.entry_kind, i.entry_name, i.started_at, i.wall_ms, i.cpu_ms, i.host_calls, i.outcome, i.error_code
    from plugin_invocations i
   where i.plugin = p_plugin and (p_before is null or i.id < p_before)
   order by i.id desc limit least(greatest(p_limit, 1), 500)
$$;`)
    this.addSql(`alter function trellis_plugin_invocations(text, uuid, int) owner to trellis_auth;`)
    this.addSql(`revoke all on function trellis_plugin_invocations(text, uuid, int) from public;`)
    this.addSql(`grant execute on function trellis_plugin_invocations(text, uuid, int) to trellis_app;`)
  }

  override async down(): Promise<void> {
    this.addSql(
      `drop function if exists trellis_plugin_invocations(text, uuid, int), trellis_plugin_index(text, text, text[], boolean);`,
    )
    this.addSql(
      `drop table if exists plugin_invocations, plugin_records, plugin_installations, plugin_versions cascade;`,
    )
  }
}
