import { Migration } from '@mikro-orm/migrations'

// The host-call transcript of each plugin invocation (ADR 0047): a bounded, masked summary of
// its input and of every host call it made. plugin_invocations already has row-level security
// by tenant and grants to trellis_app; the two columns inherit both. The publisher's function
// gains the calls' ops, outcomes and durations only — never their arguments or results.
export class Migration20261207000201InvocationTranscript extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table plugin_invocations add column input jsonb, add column transcript jsonb;`)
    this.addSql(`drop function if exists trellis_plugin_invocations(text, uuid, int);`)
    this.addSql(`
create function trellis_plugin_invocations(p_plugin text, p_before uuid, p_limit int)
returns table (id uuid, version text, entry_kind text, entry_name text, started_at timestamptz, wall_ms real, cpu_ms real, host_calls int, outcome text, error_code text, host_call_ops jsonb)
language sql stable security definer set search_path = public as $$
  select i.id, i.version, i.entry_kind, i.entry_name, i.started_at, i.wall_ms, i.cpu_ms, i.host_calls, i.outcome, i.error_code,
         case when i.transcript is null then null else jsonb_build_object(
           'calls', coalesce((select jsonb_agg(jsonb_strip_nulls(jsonb_build_object('op', c->'op', 'ok', c->'ok', 'error', c->'error', 'ms', c->'ms')))
                                from jsonb_array_elements(i.transcript->'calls') c), '[]'::jsonb),
           'omitted', coalesce(i.transcript->'omitted', '0'::jsonb)) end
    from plugin_invocations i
   where i.plugin = p_plugin and (p_before is null or i.id < p_before)
   order by i.id desc limit least(greatest(p_limit, 1), 500)
$$;`)
    this.addSql(`alter function trellis_plugin_invocations(text, uuid, int) owner to trellis_auth;`)
    this.addSql(`revoke all on function trellis_plugin_invocations(text, uuid, int) from public;`)
    this.addSql(`grant execute on function trellis_plugin_invocations(text, uuid, int) to trellis_app;`)
  }

  override async down(): Promise<void> {
    this.addSql(`drop function if exists trellis_plugin_invocations(text, uuid, int);`)
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
    this.addSql(`alter table plugin_invocations drop column if exists input, drop column if exists transcript;`)
  }
}
