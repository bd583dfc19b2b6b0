import { Migration } from '@mikro-orm/migrations'

const PLATFORM = `'00000000-0000-0000-0000-000000000000'::uuid`

// Governed AI (ADR 0027): the model registry the platform keeps, what partners offer and
// tenants choose, monthly budgets with their reservations, and the record of every call.
//
// ai_models is the platform's catalogue (no tenant data): every transaction reads it, only the
// platform writes it; the credential column holds a SecretBox ciphertext and is never returned.
// ai_settings, ai_budgets and ai_usage belong to an organisation (a tenant, or a partner for
// what it offers its tenants and its all-tenants budget); ai_records to the tenant that called.
export class Migration20261206000001Ai extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table ai_models (
  id uuid primary key,
  alias text not null unique,
  kind text not null check (kind in ('chat', 'embedding')),
  provider text not null check (provider in ('huggingface', 'local')),
  endpoint_url text,
  model_id text not null,
  credential text,
  price_in_micros bigint not null default 0,
  price_out_micros bigint not null default 0,
  no_retention boolean not null default false,
  region text,
  status text not null default 'approved' check (status in ('approved', 'blocked')),
  blocked_reason text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);`)
    // The embedded defaults: working AI with no endpoint and no download (seeded before row-level
    // security is forced, so an owner that is not superuser may write them).
    this.addSql(`insert into ai_models (id, alias, kind, provider, model_id, no_retention) values
  ('00000000-0000-7000-8000-0000000a1001', 'local-extractive', 'chat', 'local', 'local-extractive', true),
  ('00000000-0000-7000-8000-0000000a1002', 'local-lexical', 'embedding', 'local', 'local-lexical', true);`)
    this.addSql(`alter table ai_models enable row level security;`)
    this.addSql(`alter table ai_models force row level security;`)
    this.addSql(`create policy ai_models_read on ai_models for select to trellis_app using (true);`)
    this.addSql(
      `create policy ai_models_write on ai_models for insert to trellis_app with check (trellis_current_tenant() = ${PLATFORM});`,
    )
    this.addSql(
      `create policy ai_models_update on ai_models for update to trellis_app using (trellis_current_tenant() = ${PLATFORM}) with check (trellis_current_tenant() = ${PLATFORM});`,
    )
    this.addSql(`grant select, insert, update on ai_models to trellis_app;`)

    for (const [table, ddl] of [
      [
        'ai_settings',
        `create table ai_settings (
  tenant_id uuid primary key default trellis_current_tenant(),
  enabled boolean not null default true,
  chat_model text,
  embed_model text,
  offered text[],
  injection_mode text not null default 'log' check (injection_mode in ('log', 'block')),
  keep_text boolean not null default true,
  updated_at timestamptz not null default now()
);`,
      ],
      [
        'ai_budgets',
        `create table ai_budgets (
  tenant_id uuid not null default trellis_current_tenant(),
  scope_id uuid not null,
  scope text not null check (scope in ('tenant', 'partner', 'installation')),
  unit text not null check (unit in ('tokens', 'micros')),
  monthly_limit bigint not null check (monthly_limit >= 0),
  primary key (tenant_id, scope_id)
);`,
      ],
      [
        'ai_usage',
        `create table ai_usage (
  tenant_id uuid not null default trellis_current_tenant(),
  scope_id uuid not null,
  period text not null,
  used bigint not null default 0,
  reserved bigint not null default 0,
  primary key (tenant_id, scope_id, period)
);`,
      ],
      [
        'ai_records',
        `create table ai_records (
  id uuid primary key,
  tenant_id uuid not null default trellis_current_tenant(),
  at timestamptz not null default now(),
  user_id uuid,
  installation_id uuid,
  plugin text,
  feature text not null,
  model_alias text not null,
  model_id text not null,
  provider text not null,
  outcome text not null check (outcome in ('ok', 'failed', 'refused')),
  error_code text,
  prompt text,
  answer text,
  input_tokens integer not null default 0,
  output_tokens integer not null default 0,
  cost_micros bigint not null default 0,
  latency_ms integer not null default 0,
  chunks jsonb not null default '[]',
  citations jsonb not null default '[]',
  verdicts jsonb not null default '{}'
);`,
      ],
    ] as const) {
      this.addSql(ddl)
      this.addSql(`alter table ${table} enable row level security;`)
      this.addSql(`alter table ${table} force row level security;`)
      this.addSql(
        `create policy ${table}_own on ${table} for all to trellis_app using (tenant_id = trellis_current_tenant()) with check (tenant_id = trellis_current_tenant());`,
      )
    }
    this.addSql(`grant select, insert, update, delete on ai_settings, ai_budgets to trellis_app;`)
    this.addSql(`grant select, insert, update on ai_usage to trellis_app;`)
    this.addSql(`grant select, insert on ai_records to trellis_app;`)
    this.addSql(`create index ai_records_tenant_at_idx on ai_records (tenant_id, at desc, id desc);`)
    this.addSql(`create index ai_records_model_idx on ai_records (model_alias, tenant_id);`)

    // A partner's usage, aggregated per tenant of its own; the platform's, per tenant of all.
    // Read through these functions only: neither sees a single record.
    this.addSql(`
create function trellis_ai_usage_by_tenant(p_from timestamptz, p_to timestamptz)
returns table (tenant_id uuid, calls bigint, input_tokens bigint, output_tokens bigint, cost_micros bigint)
language sql stable security definer set search_path = public as $$
  select r.tenant_id, count(*), coalesce(sum(r.input_tokens), 0), coalesce(sum(r.output_tokens), 0), coalesce(sum(r.cost_micros), 0)
  from ai_records r
  where r.at >= p_from and r.at < p_to and r.outcome = 'ok'
    and (trellis_current_tenant() = ${PLATFORM}
      or r.tenant_id in (select t.id from tenants t where t.partner_id = trellis_current_tenant()))
  group by r.tenant_id
$$;`)
    // The tenants a model change concerns: those that chose it or called it lately.
    this.addSql(`
create function trellis_ai_tenants_of_model(p_alias text)
returns table (tenant_id uuid)
language sql stable security definer set search_path = public as $$
  select s.tenant_id from ai_settings s
   where (s.chat_model = p_alias or s.embed_model = p_alias) and exists (select 1 from tenants t where t.id = s.tenant_id)
  union
  select distinct r.tenant_id from ai_records r where r.model_alias = p_alias and r.at > now() - interval '31 days'
$$;`)
    for (const fn of ['trellis_ai_usage_by_tenant(timestamptz, timestamptz)', 'trellis_ai_tenants_of_model(text)']) {
      this.addSql(`alter function ${fn} owner to trellis_auth;`)
      this.addSql(`revoke all on function ${fn} from public;`)
      this.addSql(`grant execute on function ${fn} to trellis_app;`)
    }
    this.addSql(
      `create policy ai_records_aggregates on ai_records for select to trellis_auth using (current_user = 'trellis_auth');`,
    )
    this.addSql(
      `create policy ai_settings_aggregates on ai_settings for select to trellis_auth using (current_user = 'trellis_auth');`,
    )
    this.addSql(
      `grant select (tenant_id, at, outcome, model_alias, input_tokens, output_tokens, cost_micros) on ai_records to trellis_auth;`,
    )
    this.addSql(`grant select (tenant_id, chat_model, embed_model) on ai_settings to trellis_auth;`)
    this.addSql(`grant select (id, partner_id) on tenants to trellis_auth;`)
  }

  override async down(): Promise<void> {
    this.addSql(`drop function if exists trellis_ai_usage_by_tenant(timestamptz, timestamptz);`)
    this.addSql(`drop function if exists trellis_ai_tenants_of_model(text);`)
    this.addSql(`drop table if exists ai_records, ai_usage, ai_budgets, ai_settings, ai_models cascade;`)
  }
}
