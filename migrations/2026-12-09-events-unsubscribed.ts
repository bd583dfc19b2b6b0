import { Migration } from '@mikro-orm/migrations'

// The generation's trigger function and the endpoints' triggers: also what migration
// 20261210000101's down() restores (ADR 0105).
export const SUBSCRIBERS_CHANGED = `
create function trellis_subscribers_changed() returns trigger
language plpgsql security definer set search_path = public as $$
begin
  if tg_op <> 'DELETE' then
    insert into event_subscriber_gens as g (tenant_id) values (new.tenant_id)
      on conflict (tenant_id) do update set gen = g.gen + 1;
  end if;
  if tg_op = 'DELETE' or (tg_op = 'UPDATE' and old.tenant_id is distinct from new.tenant_id) then
    insert into event_subscriber_gens as g (tenant_id) values (old.tenant_id)
      on conflict (tenant_id) do update set gen = g.gen + 1;
  end if;
  return null;
end $$;`
export const ENDPOINT_TRIGGERS = [
  `create trigger webhook_endpoints_subscribers_added after insert or delete on webhook_endpoints for each row execute function trellis_subscribers_changed();`,
  `create trigger webhook_endpoints_subscribers_changed after update on webhook_endpoints for each row
        when (old.status is distinct from new.status or old.types is distinct from new.types or old.tenant_id is distinct from new.tenant_id)
        execute function trellis_subscribers_changed();`,
]

// An event nobody subscribes to costs one row write (ADR 0082): the emitting transaction writes
// it already processed, so the dispatcher never takes it, numbers it or stamps it.
//
// - event_subscriber_gens: one number per tenant that every change to what the tenant
//   subscribes with moves on — an endpoint created, deleted, enabled or retyped; an installation
//   added, removed, enabled or moved to another version. Moved by triggers in the changing
//   transaction itself, so it commits with the change. A tenant without a row never had a
//   subscriber (generation 0).
// - A process caches, per tenant, the generation together with the event types its subscribers
//   want (read in one statement, one snapshot). It writes an event processed only when no cached
//   subscriber wants the type AND, in the insert statement itself, the tenant's generation is
//   still the cached one: a subscription committed before the emitting statement started makes
//   it mismatch, and the event is written pending as before.
// - events_emit: a request transaction may write an event processed, stamped with its own
//   transaction's time (never back-dated), never dispatched and never numbered.
export class Migration20261209000201EventsUnsubscribed extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table event_subscriber_gens (
  tenant_id uuid primary key,
  gen bigint not null default 1
);`)
    // Forced like every tenant table: the roles read their tenant's row; only the owner's
    // trigger function (below) writes, through a policy for the owner alone.
    this.addSql(`alter table event_subscriber_gens enable row level security;`)
    this.addSql(`alter table event_subscriber_gens force row level security;`)
    this.addSql(`do $$ begin
  execute format('create policy event_subscriber_gens_owner on event_subscriber_gens for all to %I using (true) with check (true)', current_user);
end $$;`)
    this.addSql(
      `create policy event_subscriber_gens_read on event_subscriber_gens for select to trellis_app, trellis_events using (tenant_id = trellis_current_tenant());`,
    )
    this.addSql(`grant select on event_subscriber_gens to trellis_app, trellis_events;`)
    this.addSql(SUBSCRIBERS_CHANGED)
    this.addSql(`revoke all on function trellis_subscribers_changed() from public;`)
    for (const sql of ENDPOINT_TRIGGERS) this.addSql(sql)
    this.addSql(
      `create trigger plugin_installations_subscribers_added after insert or delete on plugin_installations for each row execute function trellis_subscribers_changed();`,
    )
    this.addSql(
      `create trigger plugin_installations_subscribers_changed after update on plugin_installations for each row
        when (old.status is distinct from new.status or old.version_id is distinct from new.version_id or old.tenant_id is distinct from new.tenant_id)
        execute function trellis_subscribers_changed();`,
    )
    // Tenants that already subscribe start at generation 1.
    this.addSql(`insert into event_subscriber_gens (tenant_id)
      select tenant_id from webhook_endpoints union select tenant_id from plugin_installations
      on conflict do nothing;`)

    this.addSql(`drop policy if exists events_emit on events;`)
    this.addSql(
      `create policy events_emit on events for insert to trellis_app with check (tenant_id = trellis_current_tenant() and dispatched_at is null and seq is null and (processed_at is null or processed_at = now()));`,
    )
  }

  override async down(): Promise<void> {
    this.addSql(`drop policy if exists events_emit on events;`)
    this.addSql(
      `create policy events_emit on events for insert to trellis_app with check (tenant_id = trellis_current_tenant() and dispatched_at is null and processed_at is null);`,
    )
    this.addSql(`drop trigger if exists plugin_installations_subscribers_changed on plugin_installations;`)
    this.addSql(`drop trigger if exists plugin_installations_subscribers_added on plugin_installations;`)
    this.addSql(`drop trigger if exists webhook_endpoints_subscribers_changed on webhook_endpoints;`)
    this.addSql(`drop trigger if exists webhook_endpoints_subscribers_added on webhook_endpoints;`)
    this.addSql(`drop function if exists trellis_subscribers_changed();`)
    this.addSql(`drop table if exists event_subscriber_gens;`)
  }
}
