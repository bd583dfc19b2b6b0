import { Migration } from '@mikro-orm/migrations'

// Signed checkpoints of each organisation's audit chain head (ADR 0011).
//
// The checkpoints that count are the copies published outside the database (the
// `kernel.audit.checkpoint` event, the checkpoint directory); this table is the kernel's own
// record of what it published: which head was last signed, so a periodic run skips unchanged
// chains and several kernel processes do not publish the same head twice. An organisation
// reads and writes only its own (the checkpoint is made in its transaction, as trellis_app);
// the auditor role reads all.
export class Migration20261205000002AuditCheckpoints extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table audit_checkpoints (
  id uuid primary key,
  tenant_id uuid not null,
  seq bigint not null,
  hash text not null,
  kid text not null,
  jws text not null,
  created_at timestamptz not null default now()
);`)
    this.addSql(`create index audit_checkpoints_tenant_idx on audit_checkpoints (tenant_id, seq desc);`)
    this.addSql(`alter table audit_checkpoints enable row level security;`)
    this.addSql(`alter table audit_checkpoints force row level security;`)
    this.addSql(
      `create policy audit_checkpoints_read on audit_checkpoints for select to trellis_app using (tenant_id = trellis_current_tenant());`,
    )
    this.addSql(
      `create policy audit_checkpoints_write on audit_checkpoints for insert to trellis_app with check (tenant_id = trellis_current_tenant());`,
    )
    this.addSql(
      `create policy audit_checkpoints_auditor on audit_checkpoints for select to trellis_auditor using (current_user = 'trellis_auditor');`,
    )
    this.addSql(`grant select, insert on audit_checkpoints to trellis_app;`)
    this.addSql(`grant select on audit_checkpoints to trellis_auditor;`)
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists audit_checkpoints cascade;`)
  }
}
