import t from 'tap'
import { AsyncLocalStorage } from 'node:async_hooks'
import { TransactionContext } from '@mikro-orm/postgresql'
import { RoleSchema } from '../src/identity/entities.js'
import { createTenantWithAdmin, startTestKernel } from './helpers/test-kernel.js'

// ADR 0106: the kernel's MikroORM transactions (owner maintenance, entity reads) run without
// MikroORM's AsyncLocalStorage context — entering it once makes every promise of the process
// pay a hook — and still commit, roll back and stay scoped as before.
/** How many times any AsyncLocalStorage was entered while `fn` ran. */
async function contextsEntered<T>(fn: () => Promise<T>): Promise<{ result: T; entered: number }> {
  const proto = AsyncLocalStorage.prototype
  const { run, enterWith } = proto
  let entered = 0
  proto.run = function (this: AsyncLocalStorage<unknown>, ...args: Parameters<typeof run>) {
    entered++
    return run.apply(this, args)
  } as typeof run
  proto.enterWith = function (this: AsyncLocalStorage<unknown>, store: unknown) {
    entered++
    return enterWith.call(this, store)
  }
  try {
    return { result: await fn(), entered }
  } finally {
    Object.assign(proto, { run, enterWith })
  }
}

t.test('owner and entity-manager transactions (postgres)', async (t) => {
  const k = await startTestKernel(t, 'postgres')
  const a = await createTenantWithAdmin(k, 'orm-a')
  const b = await createTenantWithAdmin(k, 'orm-b')
  const db = k.kernel.ctx.db

  t.test('the owner transaction commits what its body wrote, outside any async context', async (t) => {
    const { result: inside, entered } = await contextsEntered(() =>
      db.asOwner(async (tx) => {
        await tx.sql(
          `insert into roles (id, tenant_id, name, description, permissions)
           values (gen_random_uuid(), ?::uuid, 'orm-kept', '', '{}')`,
          [a.orgId],
        )
        return TransactionContext.currentTransactionContext()
      }),
    )
    t.equal(inside, undefined, 'no MikroORM transaction context was entered')
    t.equal(entered, 0, 'no AsyncLocalStorage was entered at all')
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
    const { result: inA, entered } = await contextsEntered(() => seen(a.orgId))
    t.equal(inA.context, undefined, 'no MikroORM transaction context was entered')
    t.equal(entered, 0, 'a transaction that only reads enters no AsyncLocalStorage (no flush)')
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

  t.test('an entity changed in an entity-manager transaction is written when it commits', async (t) => {
    await db.withEntityManager(a.orgId, async (em) => {
      const role = await em.findOneOrFail(RoleSchema, { name: 'orm-kept' })
      role.description = 'flushed'
    })
    t.same(await k.ownerSql(`select description from roles where name = 'orm-kept'`), [{ description: 'flushed' }])
  })
})
