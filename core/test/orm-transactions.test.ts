import t from 'tap'
import { TransactionContext } from '@mikro-orm/postgresql'
import { RoleSchema } from '../src/identity/entities.js'
import { createTenantWithAdmin, startTestKernel } from './helpers/test-kernel.js'

// ADR 0106: the kernel's MikroORM transactions (owner maintenance, entity reads) run without
// MikroORM's AsyncLocalStorage context — entering it once makes every promise of the process
// pay a hook — and still commit, roll back and stay scoped as before.
t.test('owner and entity-manager transactions (postgres)', async (t) => {
  const k = await startTestKernel(t, 'postgres')
  const a = await createTenantWithAdmin(k, 'orm-a')
  const b = await createTenantWithAdmin(k, 'orm-b')
  const db = k.kernel.ctx.db

  t.test('the owner transaction commits what its body wrote, outside any async context', async (t) => {
    const inside = await db.asOwner(async (tx) => {
      await tx.sql(
        `insert into roles (id, tenant_id, name, description, permissions)
                    values (gen_random_uuid(), ?::uuid, 'orm-kept', '', '{}')`,
        [a.orgId],
      )
      return TransactionContext.currentTransactionContext()
    })
    t.equal(inside, undefined, 'no MikroORM transaction context was entered')
    t.same(await k.ownerSql(`select name from roles where name = 'orm-kept'`), [{ name: 'orm-kept' }])
  })

  t.test('the owner transaction rolls back what its body wrote when it throws', async (t) => {
    await t.rejects(
      db.asOwner(async (tx) => {
        await tx.sql(
          `insert into roles (id, tenant_id, name, description, permissions)
                      values (gen_random_uuid(), ?::uuid, 'orm-lost', '', '{}')`,
          [a.orgId],
        )
        throw new Error('changed my mind')
      }),
      { message: 'changed my mind' },
    )
    t.same(await k.ownerSql(`select name from roles where name = 'orm-lost'`), [])
  })

  t.test("an entity-manager transaction sees its own organisation's rows only", async (t) => {
    const seen = async (orgId: string) =>
      db.withEntityManager(orgId, async (em) => ({
        context: TransactionContext.currentTransactionContext(),
        role: await em.findOne(RoleSchema, { name: 'orm-kept' }),
      }))
    const inA = await seen(a.orgId)
    t.equal(inA.context, undefined, 'no MikroORM transaction context was entered')
    t.equal(inA.role?.tenantId, a.orgId)
    t.equal((await seen(b.orgId)).role, null, "another tenant's role is hidden")
    await t.rejects(
      db.withEntityManager(a.orgId, async (em) => {
        await em.execute(`update roles set description = 'changed' where name = 'orm-kept'`)
        throw new Error('undo')
      }),
      { message: 'undo' },
    )
    t.same(await k.ownerSql(`select description from roles where name = 'orm-kept'`), [{ description: '' }])
  })
})
