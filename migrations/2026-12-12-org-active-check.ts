import { Migration } from '@mikro-orm/migrations'

// The check a transaction that refuses a suspended organisation makes in SQL (ADR 0112). Such a
// transaction sends its `begin`, its scoping and this check with its first statement, in one
// round trip, instead of reading trellis_org_block back before it writes: the check raises, the
// server skips the statement, and the kernel answers with the error the SQLSTATE names —
// TRS01 the organisation (a tenant, or a partner acting in its own name) is suspended, TRS02 the
// tenant's partner is. It runs with the caller's rights, as trellis_org_block does.
export class Migration20261212000101OrgActiveCheck extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create function trellis_org_assert_active(p_org uuid) returns void language plpgsql stable as $$
declare b text := trellis_org_block(p_org);
begin
  if b in ('tenant', 'partner_self') then
    raise exception 'the organisation is suspended' using errcode = 'TRS01';
  elsif b = 'partner' then
    raise exception 'the partner is suspended' using errcode = 'TRS02';
  end if;
end $$;`)
  }

  override async down(): Promise<void> {
    this.addSql(`drop function if exists trellis_org_assert_active(uuid);`)
  }
}
