import { Migration } from '@mikro-orm/migrations'

// Knowledge bases, their documents (versions with a draft → approved → retired status), the
// documents' chunks with a full-text vector and an embedding, the questions asked of a base
// (monitoring and feedback), its evaluation set and its escalations.
//
// An organisation owns its rows (tenant_id). A partner's base marked `shared` is readable by
// the partner's tenants: the read policies let a tenant see shared rows whose owner is its
// partner (trellis_current_partner(), a security-definer look-up, evaluated once per statement).
// Writes stay in the owner's own organisation.
//
// Vectors: `embedding real[]` always (the exact scan where pgvector is missing — Debian's
// PostgreSQL 15 has none); `embedding_v vector` as well where the extension exists (PGlite ships it).
export class Migration20261206000002Knowledge extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create or replace function trellis_current_partner() returns uuid language sql stable security definer set search_path = public as $$
  select partner_id from tenants where id = nullif(current_setting('app.tenant_id', true), '')::uuid
$$;`)
    this.addSql(`revoke all on function trellis_current_partner() from public;`)
    this.addSql(`grant execute on function trellis_current_partner() to trellis_app;`)
    this.addSql(`
create or replace function trellis_real_dot(a real[], b real[]) returns real language sql immutable parallel safe as $$
  select coalesce(sum(x * y), 0)::real from unnest(a, b) as t(x, y)
$$;`)
    this.addSql(`
create table knowledge_bases (
  id uuid primary key,
  tenant_id uuid not null default trellis_current_tenant(),
  slug text not null,
  name text not null,
  description text not null default '',
  shared boolean not null default false,
  embedding_model text not null,
  embedding_dims int not null,
  threshold real not null default 0.2,
  support_role text,
  created_by uuid,
  created_at timestamptz not null default now(),
  unique (tenant_id, slug)
);`)
    this.addSql(`
create table knowledge_documents (
  id uuid primary key,
  tenant_id uuid not null default trellis_current_tenant(),
  kb_id uuid not null references knowledge_bases(id) on delete cascade,
  shared boolean not null default false,
  title text not null,
  source text not null,
  version int not null,
  format text not null,
  owner text not null,
  tags text[] not null default '{}',
  classification text not null default 'internal',
  roles text[] not null default '{}',
  status text not null default 'draft' check (status in ('draft', 'approved', 'retired')),
  content_hash text not null,
  chunk_count int not null default 0,
  warnings jsonb not null default '[]',
  created_by uuid,
  approved_by uuid,
  approved_at timestamptz,
  retired_at timestamptz,
  created_at timestamptz not null default now(),
  unique (kb_id, source, version)
);`)
    // At most one approved (current) version of a source.
    this.addSql(
      `create unique index knowledge_documents_current_idx on knowledge_documents (kb_id, source) where status = 'approved';`,
    )
    this.addSql(`create index knowledge_documents_kb_idx on knowledge_documents (tenant_id, kb_id, status);`)
    this.addSql(`
create table knowledge_chunks (
  tenant_id uuid not null default trellis_current_tenant(),
  document_id uuid not null references knowledge_documents(id) on delete cascade,
  chunk_key text not null,
  kb_id uuid not null,
  shared boolean not null default false,
  ordinal int not null,
  heading text not null default '',
  text text not null,
  tsv tsvector generated always as (to_tsvector('english', heading || ' ' || text)) stored,
  embedding real[] not null,
  primary key (document_id, chunk_key)
);`)
    this.addSql(`create index knowledge_chunks_kb_idx on knowledge_chunks (kb_id, document_id);`)
    this.addSql(`create index knowledge_chunks_tsv_idx on knowledge_chunks using gin (tsv);`)
    this.addSql(`
do $$ begin
  if exists (select 1 from pg_available_extensions where name = 'vector') then
    create extension if not exists vector;
    alter table knowledge_chunks add column embedding_v vector;
  end if;
end $$;`)
    this.addSql(`
create table knowledge_asks (
  id uuid primary key,
  tenant_id uuid not null default trellis_current_tenant(),
  kb_id uuid not null,
  asked_by uuid,
  question text not null,
  answered boolean not null,
  escalated boolean not null,
  top_score real,
  passages int not null,
  cited int not null,
  chunk_keys text[] not null default '{}',
  model text not null,
  helpful boolean,
  created_at timestamptz not null default now()
);`)
    this.addSql(`create index knowledge_asks_kb_idx on knowledge_asks (tenant_id, kb_id, created_at);`)
    this.addSql(`
create table knowledge_escalations (
  id uuid primary key,
  tenant_id uuid not null default trellis_current_tenant(),
  kb_id uuid not null,
  ask_id uuid not null references knowledge_asks(id) on delete cascade,
  question text not null,
  role text,
  closest jsonb not null default '[]',
  status text not null default 'open' check (status in ('open', 'resolved')),
  resolution text,
  resolved_by uuid,
  resolved_at timestamptz,
  created_at timestamptz not null default now()
);`)
    this.addSql(`create index knowledge_escalations_idx on knowledge_escalations (tenant_id, status, id);`)
    this.addSql(`
create table knowledge_eval_questions (
  id uuid primary key,
  tenant_id uuid not null default trellis_current_tenant(),
  kb_id uuid not null references knowledge_bases(id) on delete cascade,
  question text not null,
  expect text not null,
  created_at timestamptz not null default now()
);`)
    this.addSql(`create index knowledge_eval_questions_idx on knowledge_eval_questions (tenant_id, kb_id);`)

    const own = 'tenant_id = trellis_current_tenant()'
    const sharedWithMe = '(shared and tenant_id = (select trellis_current_partner()))'
    for (const table of ['knowledge_bases', 'knowledge_documents', 'knowledge_chunks']) {
      this.addSql(`alter table ${table} enable row level security;`)
      this.addSql(`alter table ${table} force row level security;`)
      this.addSql(
        `create policy ${table}_read on ${table} for select to trellis_app using (${own} or ${sharedWithMe});`,
      )
      this.addSql(`create policy ${table}_write on ${table} for all to trellis_app using (${own}) with check (${own});`)
      this.addSql(`grant select, insert, update, delete on ${table} to trellis_app;`)
    }
    for (const table of ['knowledge_asks', 'knowledge_escalations', 'knowledge_eval_questions']) {
      this.addSql(`alter table ${table} enable row level security;`)
      this.addSql(`alter table ${table} force row level security;`)
      this.addSql(
        `create policy ${table}_tenant on ${table} for all to trellis_app using (${own}) with check (${own});`,
      )
      this.addSql(`grant select, insert, update, delete on ${table} to trellis_app;`)
    }
  }

  override async down(): Promise<void> {
    this.addSql(
      'drop table if exists knowledge_eval_questions, knowledge_escalations, knowledge_asks, knowledge_chunks, knowledge_documents, knowledge_bases;',
    )
    this.addSql('drop function if exists trellis_current_partner(), trellis_real_dot(real[], real[]);')
  }
}
