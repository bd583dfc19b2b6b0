import { Migration } from '@mikro-orm/migrations'

// Statistics for the record fields plugins declare unique (ADR 0109). A declared index is a
// partial expression index (one plugin's collection), and PostgreSQL never reads a partial
// index's statistics when it estimates a condition: every `data -> 'f' = ?` was guessed to match
// 0.5 % of the collection, so a look-up by a unique field ordered by id walked the whole
// collection in id order instead of reading the one entry. An expression statistics object on
// `data -> 'f'` (over the table: one per field name, whatever plugin declares it) tells the
// planner the field's values are (nearly) all distinct. Only single-field unique indexes get
// one: for a field of few values the guess of 0.5 % keeps a declared index in use where the
// statistics would make a generic plan walk the collection for a rare value. trellis_plugin_index
// now creates the object with the index and analyzes the table when it made a new one (once per
// field name); the indexes already created get theirs here, analyzed likewise. A restored dump
// holds no statistics: the kernel's table upkeep analyzes a table whose statistics are empty.
const INDEX_FUNCTION = (withStatistics: boolean) => `
create or replace function trellis_plugin_index(p_plugin text, p_collection text, p_fields text[], p_unique boolean) returns text
language plpgsql security definer set search_path = public as $$
declare
  f text;
  cols text := 'tenant_id';
  idx text;${
    withStatistics
      ? `
  stx text;
  fresh boolean := false;`
      : ''
  }
begin
  if p_plugin !~ '^@[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*$' then raise exception 'invalid plugin name' using errcode = '22023'; end if;
  if p_collection !~ '^[A-Za-z_][A-Za-z0-9_-]{0,63}$' then raise exception 'invalid collection name' using errcode = '22023'; end if;
  if coalesce(array_length(p_fields, 1), 0) = 0 or array_length(p_fields, 1) > 8 then raise exception 'an index has 1 to 8 fields' using errcode = '22023'; end if;
  foreach f in array p_fields loop
    if f !~ '^[A-Za-z_][A-Za-z0-9_]{0,63}$' then raise exception 'invalid field name' using errcode = '22023'; end if;
    cols := cols || case f
      when 'id' then ', id' when 'version' then ', version' when 'createdAt' then ', created_at' when 'updatedAt' then ', updated_at'
      else format(', (data -> %L)', f) end;${
        withStatistics
          ? `
    stx := 'plugin_stx_' || substr(md5(f), 1, 20);
    if p_unique and array_length(p_fields, 1) = 1 and f not in ('id', 'version', 'createdAt', 'updatedAt') then
      -- Installs declaring the same field at once take turns on the table's lock, which creating a
      -- statistics object takes before it looks for the name: the second finds the first's object.
      if not exists (select 1 from pg_statistic_ext where stxname = stx) then
        execute format('create statistics if not exists %I on ((data -> %L)) from plugin_records', stx, f);
        fresh := true;
      end if;
    end if;`
          : ''
      }
  end loop;
  idx := 'plugin_idx_' || substr(md5(p_plugin || '|' || p_collection || '|' || array_to_string(p_fields, ',') || '|' || p_unique::text), 1, 20);
  execute format('create %s index if not exists %I on plugin_records (%s) where plugin = %L and collection = %L',
    case when p_unique then 'unique' else '' end, idx, cols, p_plugin, p_collection);${
      withStatistics
        ? `
  -- A new statistics object is empty until the table is analyzed (a transaction may; the install's does).
  if fresh then analyze plugin_records; end if;`
        : ''
    }
  return idx;
end $$;`

export class Migration20261211000101PluginFieldStatistics extends Migration {
  override async up(): Promise<void> {
    this.addSql(INDEX_FUNCTION(true))
    this.addSql(`do $$ declare f text; begin
  for f in
    select distinct m[1] from pg_indexes i,
           regexp_matches(i.indexdef, $r$^CREATE UNIQUE INDEX \\S+ ON \\S+ USING btree \\(tenant_id, \\(\\(data -> '([A-Za-z_][A-Za-z0-9_]{0,63})'::text\\)\\)\\) WHERE$r$) m
     where i.tablename = 'plugin_records' and i.indexname like 'plugin_idx_%'
  loop
    execute format('create statistics if not exists %I on ((data -> %L)) from plugin_records', 'plugin_stx_' || substr(md5(f), 1, 20), f);
  end loop;
  if found then analyze plugin_records; end if;
end $$;`)
  }

  override async down(): Promise<void> {
    this.addSql(INDEX_FUNCTION(false))
    this.addSql(`do $$ declare s text; begin
  for s in select stxname from pg_statistic_ext where stxrelid = 'plugin_records'::regclass and stxname like 'plugin_stx_%' loop
    execute format('drop statistics %I', s);
  end loop;
end $$;`)
  }
}
