import { Migration } from '@mikro-orm/migrations'

// A plugin's health across the tenants that run it, for its publisher (and platform admins):
// per version, counts and latency figures over a window — aggregates only, never a tenant,
// caller, input or log. Owned by trellis_auth like trellis_plugin_invocations, the only role
// that reads plugin_invocations across tenants. And an index for a publisher's own versions.
export class Migration20261209000501PluginHealth extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create function trellis_plugin_health(p_plugin text, p_since timestamptz)
returns table (version text, invocations bigint, errors bigint, tenants bigint, wall_p50 real, wall_p95 real, cpu_avg real, last_at timestamptz)
language sql stable security definer set search_path = public as $$
  select i.version, count(*), count(*) filter (where i.outcome <> 'ok'), count(distinct i.tenant_id),
         (percentile_cont(0.5) within group (order by i.wall_ms))::real,
         (percentile_cont(0.95) within group (order by i.wall_ms))::real,
         avg(i.cpu_ms)::real, max(i.started_at)
    from plugin_invocations i
   where i.plugin = p_plugin and i.started_at >= p_since
   group by i.version
   order by max(i.started_at) desc
   limit 100
$$;`)
    this.addSql(`alter function trellis_plugin_health(text, timestamptz) owner to trellis_auth;`)
    this.addSql(`revoke all on function trellis_plugin_health(text, timestamptz) from public;`)
    this.addSql(`grant execute on function trellis_plugin_health(text, timestamptz) to trellis_app;`)
    // A publisher's own versions, newest first (its publishing page).
    this.addSql(`create index if not exists plugin_versions_publisher_idx on plugin_versions (publisher_id, id);`)
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists plugin_versions_publisher_idx;`)
    this.addSql(`drop function if exists trellis_plugin_health(text, timestamptz);`)
  }
}
