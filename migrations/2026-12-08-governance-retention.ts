import { Migration } from '@mikro-orm/migrations'

const PLATFORM = `'00000000-0000-0000-0000-000000000000'::uuid`
const TENANT = 'trellis_current_tenant()'

// Retention, legal hold and erasure (ADRs 0073, 0074; docs/governance.md).
//
// - retention_floors: the platform's bounds per target (a kernel record kind, every plugin
//   collection, or one collection): the fewest days a tenant must keep, the most it may keep,
//   and the default for a tenant that sets nothing. Readable by every tenant, written by the
//   platform organisation only.
// - retention_policies: a tenant's own days per target, within the platform's bounds.
// - legal_holds: a tenant-wide hold, a hold on one target, or on a set of record ids in it.
//   Released, never deleted (the evidence of a hold stays).
// - retention_runs: what each run of the retention job purged and held, per tenant.
// - erasures: what each erasure of a data subject erased where. The subject's identifier is
//   never stored, only its keyed blind-index token.
// - audit_log: entries sealed from now on commit to a digest of their payload (data_digest), so
//   a payload can be erased (erased_at set, data '{}') and the chain still verifies. The guard
//   lets a sealed entry change in exactly that way and no other; the tenant's application role
//   may do it to its own sealed entries. Entries sealed before keep the old hash form and cannot
//   be erased.
// - Retention and erasure rewrite invocation transcripts and AI interaction text in the
//   tenant's own rows (column grants: nothing else about them changes), and retention deletes
//   the tenant's finished webhook deliveries (a restrictive policy keeps pending ones).
export class Migration20261208000501GovernanceRetention extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table retention_floors (
  target text primary key,
  min_days int check (min_days >= 0),
  max_days int check (max_days >= 1),
  default_days int check (default_days >= 1),
  updated_at timestamptz not null default now(),
  updated_by text not null,
  check (max_days is null or min_days is null or max_days >= min_days),
  check (default_days is null or ((min_days is null or default_days >= min_days) and (max_days is null or default_days <= max_days)))
);`)
    this.addSql(`
create table retention_policies (
  tenant_id uuid not null default ${TENANT},
  target text not null,
  days int not null check (days >= 1),
  updated_at timestamptz not null default now(),
  updated_by text not null,
  primary key (tenant_id, target)
);`)
    this.addSql(`
create table legal_holds (
  id uuid primary key,
  tenant_id uuid not null default ${TENANT},
  target text,
  record_ids uuid[],
  reason text not null,
  created_by text not null,
  created_at timestamptz not null default now(),
  released_at timestamptz,
  released_by text,
  check (record_ids is null or target is not null)
);`)
    this.addSql(`create index legal_holds_active_idx on legal_holds (tenant_id) where released_at is null;`)
    this.addSql(`
create table retention_runs (
  id uuid primary key,
  tenant_id uuid not null default ${TENANT},
  ran_at timestamptz not null default now(),
  as_of timestamptz not null,
  purged jsonb not null,
  held jsonb not null,
  total int not null
);`)
    this.addSql(`create index retention_runs_tenant_idx on retention_runs (tenant_id, id desc);`)
    this.addSql(`
create table erasures (
  id uuid primary key,
  tenant_id uuid not null default ${TENANT},
  subject_kind text not null,
  subject_token text not null,
  requested_by text not null,
  at timestamptz not null default now(),
  report jsonb not null
);`)
    this.addSql(`create index erasures_tenant_idx on erasures (tenant_id, id desc);`)

    this.addSql(`alter table retention_floors enable row level security;`)
    this.addSql(`alter table retention_floors force row level security;`)
    this.addSql(`create policy retention_floors_read on retention_floors for select to trellis_app using (true);`)
    this.addSql(
      `create policy retention_floors_write on retention_floors for all to trellis_app using (${TENANT} = ${PLATFORM}) with check (${TENANT} = ${PLATFORM});`,
    )
    this.addSql(`grant select, insert, update, delete on retention_floors to trellis_app;`)
    for (const table of ['retention_policies', 'legal_holds', 'retention_runs', 'erasures']) {
      this.addSql(`alter table ${table} enable row level security;`)
      this.addSql(`alter table ${table} force row level security;`)
      this.addSql(
        `create policy ${table}_tenant on ${table} for all to trellis_app using (tenant_id = ${TENANT}) with check (tenant_id = ${TENANT});`,
      )
    }
    this.addSql(`grant select, insert, update, delete on retention_policies to trellis_app;`)
    this.addSql(`grant select, insert on legal_holds, retention_runs, erasures to trellis_app;`)
    this.addSql(`grant update (released_at, released_by) on legal_holds to trellis_app;`)

    // Audit payloads: a digest sealed into the chain, and erasure of the payload alone.
    this.addSql(`alter table audit_log add column data_digest text, add column erased_at timestamptz;`)
    this.addSql(`grant update (data_digest) on audit_log to trellis_auditor;`)
    this.addSql(`
create or replace function trellis_audit_guard() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE' then raise exception 'audit entries are append-only' using errcode = 'insufficient_privilege'; end if;
  if new.id <> old.id or new.tenant_id <> old.tenant_id or new.at <> old.at
     or new.actor_kind <> old.actor_kind or new.actor_id <> old.actor_id or new.action <> old.action
     or new.target_kind is distinct from old.target_kind or new.target_id is distinct from old.target_id
     or new.ip is distinct from old.ip or new.request_id is distinct from old.request_id then
    raise exception 'audit entries are append-only' using errcode = 'insufficient_privilege';
  end if;
  if old.hash is null then
    -- Sealing: seq, prev_hash, hash and data_digest are filled; the payload stays.
    if new.data <> old.data or new.erased_at is not null then
      raise exception 'audit entries are append-only' using errcode = 'insufficient_privilege';
    end if;
    return new;
  end if;
  -- A sealed entry changes only by erasing its payload, once, when the chain holds its digest.
  if old.data_digest is null or old.erased_at is not null or new.erased_at is null
     or new.data <> '{}'::jsonb or new.data_digest is distinct from old.data_digest
     or new.seq is distinct from old.seq or new.prev_hash is distinct from old.prev_hash or new.hash is distinct from old.hash then
    raise exception 'audit entries are append-only' using errcode = 'insufficient_privilege';
  end if;
  return new;
end $$;`)
    this.addSql(
      `create policy audit_erase on audit_log for update to trellis_app using (tenant_id = ${TENANT} and hash is not null and data_digest is not null and erased_at is null) with check (tenant_id = ${TENANT});`,
    )
    this.addSql(`grant update (data, erased_at) on audit_log to trellis_app;`)

    // Retention and erasure of invocation transcripts and AI interaction text (own tenant's rows,
    // by the existing tenant policies; these columns only).
    this.addSql(`grant update (input, transcript, logs) on plugin_invocations to trellis_app;`)
    this.addSql(`grant update (prompt, answer, chunks, citations) on ai_records to trellis_app;`)
    // Finished webhook deliveries past retention (their attempts go with them, on delete cascade);
    // never a pending one.
    this.addSql(
      `create policy webhook_deliveries_keep_pending_app on webhook_deliveries as restrictive for delete to trellis_app using (status <> 'pending');`,
    )
    this.addSql(`grant delete on webhook_deliveries to trellis_app;`)
  }

  override async down(): Promise<void> {
    this.addSql(`revoke delete on webhook_deliveries from trellis_app;`)
    this.addSql(`drop policy if exists webhook_deliveries_keep_pending_app on webhook_deliveries;`)
    this.addSql(`revoke update (prompt, answer, chunks, citations) on ai_records from trellis_app;`)
    this.addSql(`revoke update (input, transcript, logs) on plugin_invocations from trellis_app;`)
    this.addSql(`revoke update (data, erased_at) on audit_log from trellis_app;`)
    this.addSql(`drop policy if exists audit_erase on audit_log;`)
    this.addSql(`
create or replace function trellis_audit_guard() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE' then raise exception 'audit entries are append-only' using errcode = 'insufficient_privilege'; end if;
  if old.hash is not null or new.id <> old.id or new.tenant_id <> old.tenant_id or new.at <> old.at
     or new.actor_kind <> old.actor_kind or new.actor_id <> old.actor_id or new.action <> old.action
     or new.target_kind is distinct from old.target_kind or new.target_id is distinct from old.target_id
     or new.data <> old.data or new.ip is distinct from old.ip or new.request_id is distinct from old.request_id then
    raise exception 'audit entries are append-only' using errcode = 'insufficient_privilege';
  end if;
  return new;
end $$;`)
    this.addSql(`revoke update (data_digest) on audit_log from trellis_auditor;`)
    this.addSql(`alter table audit_log drop column if exists data_digest, drop column if exists erased_at;`)
    this.addSql('drop table if exists erasures, retention_runs, legal_holds, retention_policies, retention_floors;')
  }
}
