import { Migration } from '@mikro-orm/migrations'
import { ENDPOINT_TRIGGERS, SUBSCRIBERS_CHANGED } from './2026-12-09-events-unsubscribed.js'

// What changed in a tenant's subscriptions since a cached generation, found without reading the
// rest (ADR 0105, refining ADR 0082):
//
// - webhook_endpoints.subscribers_gen: the generation an endpoint's creation, enabling, retyping
//   (or move to another tenant) produced, stamped by a BEFORE trigger that moves the tenant's
//   generation — so "the endpoints changed since generation C" is an index range. The
//   generation row is locked from the bump to commit, so generations follow commit order: a
//   statement that sees generation G sees every endpoint stamped up to G and none above it.
//   Deleting or disabling an endpoint moves the generation too but wants nothing new.
// - event_subscriber_gens.installs_gen: the generation of the tenant's last installation change
//   (an installation's subscriptions come from its version's manifest and are re-read whole).
// - trellis_event_patterns(type): every pattern that matches `type` ('*', the type, each
//   'prefix.*'), and a GIN index over each active endpoint's (tenant, pattern) keys, read by
//   trellis_event_endpoints(types): the fan-out finds its events' endpoints by their patterns
//   instead of testing every endpoint of the tenant. Row-level security hides GIN from an array
//   overlap (not leakproof), so the lookup runs as the table's owner, for the transaction's
//   tenant only, through a policy that lets the owner read endpoints.
export class Migration20261210000101EventsSubscribersIncremental extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table event_subscriber_gens add column installs_gen bigint not null default 0;`)
    // A cache read before this migration cannot tell installation changes apart: count them all.
    this.addSql(`update event_subscriber_gens set installs_gen = gen;`)
    this.addSql(`alter table webhook_endpoints add column subscribers_gen bigint;`)
    this.addSql(`create index webhook_endpoints_subscribers_gen_idx on webhook_endpoints (tenant_id, subscribers_gen);`)
    // PL/pgSQL, not SQL: a SQL function with a subquery is never inlined and pays the SQL
    // function executor on every call (each index entry, each recheck, each lookup).
    this.addSql(`
create function trellis_event_patterns(event_type text) returns text[]
language plpgsql immutable parallel safe as $$
declare
  parts text[] := string_to_array(event_type, '.');
  out text[] := array['*', event_type];
begin
  for n in 1 .. cardinality(parts) - 1 loop
    out := out || (array_to_string(parts[1:n], '.') || '.*');
  end loop;
  return out;
end $$;`)
    this.addSql(`
create function trellis_endpoint_keys(tenant uuid, patterns text[]) returns text[]
language plpgsql immutable parallel safe as $$
declare
  out text[] := '{}';
  p text;
begin
  foreach p in array patterns loop
    out := out || (tenant::text || ' ' || p);
  end loop;
  return out;
end $$;`)
    this.addSql(
      `create index webhook_endpoints_keys_idx on webhook_endpoints using gin (trellis_endpoint_keys(tenant_id, types)) where status = 'active';`,
    )
    this.addSql(`do $$ begin
  execute format('create policy webhook_endpoints_owner_read on webhook_endpoints for select to %I using (true)', current_user);
end $$;`)
    // One call per fan-out statement, for every type among its events (its plan is kept for the
    // session): the endpoints of the transaction's tenant that want each type.
    this.addSql(`
create function trellis_event_endpoints(event_types text[]) returns table (event_type text, endpoint_id uuid)
language plpgsql stable security definer set search_path = public as $$
begin
  return query
    select t, w.id from unnest(event_types) t, webhook_endpoints w
     where trellis_endpoint_keys(w.tenant_id, w.types) && trellis_endpoint_keys(trellis_current_tenant(), trellis_event_patterns(t))
       and w.status = 'active' and w.tenant_id = trellis_current_tenant();
end $$;`)
    this.addSql(`revoke all on function trellis_event_endpoints(text[]) from public;`)
    this.addSql(`grant execute on function trellis_event_endpoints(text[]) to trellis_events;`)

    // Installations: the generation and installs_gen move together, for the tenants the row
    // was and is in (distinct: a row is updated once per statement).
    this.addSql(`
create or replace function trellis_subscribers_changed() returns trigger
language plpgsql security definer set search_path = public as $$
begin
  insert into event_subscriber_gens as g (tenant_id, gen, installs_gen)
    select distinct t, 1, case when tg_table_name = 'plugin_installations' then 1 else 0 end
      from unnest(case tg_op when 'INSERT' then array[new.tenant_id] when 'DELETE' then array[old.tenant_id] else array[new.tenant_id, old.tenant_id] end) t
    on conflict (tenant_id) do update
      set gen = g.gen + 1, installs_gen = case when tg_table_name = 'plugin_installations' then g.gen + 1 else g.installs_gen end;
  return null;
end $$;`)
    // Endpoints: stamped with the generation they produced.
    this.addSql(`
create function trellis_endpoint_subscribers() returns trigger
language plpgsql security definer set search_path = public as $$
declare
  n bigint;
begin
  insert into event_subscriber_gens as g (tenant_id) values (new.tenant_id)
    on conflict (tenant_id) do update set gen = g.gen + 1 returning g.gen into n;
  new.subscribers_gen := n;
  if tg_op = 'UPDATE' and old.tenant_id is distinct from new.tenant_id then
    insert into event_subscriber_gens as g (tenant_id) values (old.tenant_id)
      on conflict (tenant_id) do update set gen = g.gen + 1;
  end if;
  return new;
end $$;`)
    this.addSql(`revoke all on function trellis_endpoint_subscribers() from public;`)
    this.addSql(`drop trigger webhook_endpoints_subscribers_added on webhook_endpoints;`)
    this.addSql(`drop trigger webhook_endpoints_subscribers_changed on webhook_endpoints;`)
    this.addSql(
      `create trigger webhook_endpoints_subscribers_stamped before insert on webhook_endpoints for each row execute function trellis_endpoint_subscribers();`,
    )
    this.addSql(
      `create trigger webhook_endpoints_subscribers_changed before update on webhook_endpoints for each row
        when (old.status is distinct from new.status or old.types is distinct from new.types or old.tenant_id is distinct from new.tenant_id)
        execute function trellis_endpoint_subscribers();`,
    )
    this.addSql(
      `create trigger webhook_endpoints_subscribers_deleted after delete on webhook_endpoints for each row execute function trellis_subscribers_changed();`,
    )
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists webhook_endpoints_subscribers_deleted on webhook_endpoints;`)
    this.addSql(`drop trigger if exists webhook_endpoints_subscribers_changed on webhook_endpoints;`)
    this.addSql(`drop trigger if exists webhook_endpoints_subscribers_stamped on webhook_endpoints;`)
    this.addSql(`drop function if exists trellis_endpoint_subscribers();`)
    for (const sql of ENDPOINT_TRIGGERS) this.addSql(sql)
    this.addSql(`drop function if exists trellis_event_endpoints(text[]);`)
    this.addSql(`drop policy if exists webhook_endpoints_owner_read on webhook_endpoints;`)
    this.addSql(`drop index if exists webhook_endpoints_keys_idx;`)
    this.addSql(`drop function if exists trellis_endpoint_keys(uuid, text[]);`)
    this.addSql(`drop function if exists trellis_event_patterns(text);`)
    this.addSql(`drop index if exists webhook_endpoints_subscribers_gen_idx;`)
    this.addSql(`alter table webhook_endpoints drop column if exists subscribers_gen;`)
    this.addSql(`alter table event_subscriber_gens drop column if exists installs_gen;`)
    this.addSql(SUBSCRIBERS_CHANGED.replace('create function', 'create or replace function'))
  }
}
