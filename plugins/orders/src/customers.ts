// Customers: one at a time or imported in bulk, all rows checked before anything is written.
import { problem, rowsProblem, type RouteRequest, type RouteResponse } from '@trellis/plugin-sdk'
import { ORD } from './errors.js'
import type { Ctx, Customer } from './types.js'
import { customerOf } from './store.js'

function checkCustomer(raw: Record<string, unknown>): {
  customer?: Customer
  problems: Array<{ field: string; code: string; message: string }>
} {
  const problems: Array<{ field: string; code: string; message: string }> = []
  const str = (f: string, required: boolean, max: number) => {
    const v = raw[f]
    if (v === undefined || v === null || v === '') {
      if (required) problems.push({ field: f, code: 'required', message: `${f} is required` })
      return undefined
    }
    if (typeof v !== 'string' || v.length > max) {
      problems.push({ field: f, code: 'invalid', message: `${f} must be text of at most ${max} characters` })
      return undefined
    }
    return v
  }
  const allowed = new Set(['code', 'name', 'group', 'contactName', 'country', 'city', 'creditHold', 'creditLimit'])
  for (const k of Object.keys(raw))
    if (!allowed.has(k)) problems.push({ field: k, code: 'unknown_field', message: `${k} is not a customer field` })
  const c: Customer = { code: str('code', true, 64) ?? '', name: str('name', true, 200) ?? '', creditHold: false }
  for (const [f, max] of [
    ['group', 64],
    ['contactName', 200],
    ['country', 100],
    ['city', 100],
  ] as const) {
    const v = str(f, false, max)
    if (v !== undefined) c[f] = v
  }
  if (raw.creditHold !== undefined) {
    if (typeof raw.creditHold !== 'boolean')
      problems.push({ field: 'creditHold', code: 'invalid', message: 'creditHold must be true or false' })
    else c.creditHold = raw.creditHold
  }
  if (raw.creditLimit !== undefined) {
    if (typeof raw.creditLimit !== 'string' || !/^\d{1,12}(\.\d{1,2})?$/.test(raw.creditLimit))
      problems.push({ field: 'creditLimit', code: 'invalid', message: 'creditLimit must be an amount like "1000.00"' })
    else c.creditLimit = raw.creditLimit
  }
  return problems.length ? { problems } : { customer: c, problems }
}

export async function importCustomers(rows: Array<Record<string, unknown>>, ctx: Ctx): Promise<RouteResponse> {
  const errors: Array<{ row: number; field?: string; code: string; message: string }> = []
  const customers: Array<{ row: number; c: Customer }> = []
  const seen = new Map<string, number>()
  rows.forEach((raw, i) => {
    const { customer, problems } = checkCustomer(raw && typeof raw === 'object' ? raw : {})
    for (const p of problems) errors.push({ row: i + 1, ...p })
    if (!customer) return
    if (seen.has(customer.code))
      errors.push({
        row: i + 1,
        field: 'code',
        code: 'duplicate',
        message: `${customer.code} is also on row ${seen.get(customer.code)}`,
      })
    else {
      seen.set(customer.code, i + 1)
      customers.push({ row: i + 1, c: customer })
    }
  })
  const codes = customers.map((x) => x.c.code)
  if (codes.length) {
    const existing = new Set(
      (await ctx.data.customers.find({ where: { code: { in: codes } }, limit: 1000 })).items.map((c) => c.code),
    )
    for (const x of customers)
      if (existing.has(x.c.code))
        errors.push({ row: x.row, field: 'code', code: 'exists', message: `customer ${x.c.code} exists already` })
  }
  if (errors.length) return rowsProblem(ORD.INVALID_CUSTOMERS, errors, rows.length)
  const items = []
  for (const x of customers) items.push(await ctx.data.customers.insert(x.c))
  return { status: 201, body: { created: items.length, items } }
}

/** The customer routes. */
export const customerRoutes = {
  'GET /customers': async (req: RouteRequest<null, Record<string, string>, { cursor?: string }>, ctx: Ctx) => ({
    status: 200,
    body: await ctx.data.customers.find({
      limit: 500,
      sort: [{ field: 'code', direction: 'asc' }],
      ...(req.query.cursor ? { cursor: req.query.cursor } : {}),
    }),
  }),
  'POST /customers': async (req: RouteRequest<Record<string, unknown>>, ctx: Ctx) => {
    const res = await importCustomers([req.body], ctx)
    if (res.status !== 201) {
      const exists = ((res.body as { errors: Array<{ code: string }> }).errors ?? []).some((e) => e.code === 'exists')
      return exists ? problem(ORD.CUSTOMER_EXISTS, `customer ${String(req.body.code)} exists already`) : res
    }
    return { status: 201, body: (res.body as { items: unknown[] }).items[0] }
  },
  'POST /customers/import': (req: RouteRequest<{ rows: Array<Record<string, unknown>> }>, ctx: Ctx) =>
    importCustomers(req.body.rows, ctx),
  'GET /customers/:code': async (req: RouteRequest<null, { code: string }>, ctx: Ctx) => {
    const c = await customerOf(ctx, req.params.code)
    return c ? { status: 200, body: c } : problem(ORD.CUSTOMER_NOT_FOUND, `no customer ${req.params.code}`)
  },
  'PATCH /customers/:code': async (req: RouteRequest<Partial<Customer>, { code: string }>, ctx: Ctx) => {
    const c = await customerOf(ctx, req.params.code)
    if (!c) return problem(ORD.CUSTOMER_NOT_FOUND, `no customer ${req.params.code}`)
    return { status: 200, body: await ctx.data.customers.update(c.id, req.body, c.version) }
  },
}
