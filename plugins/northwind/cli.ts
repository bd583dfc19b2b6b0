// node --import tsx plugins/northwind/cli.ts --url http://127.0.0.1:3000 --token <tenant admin token> [--data dir] [--orders N] [--check]
import { parseArgs } from 'node:util'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { csvTotals, importNorthwind, pluginTotals, readNorthwind } from './import.js'

const DEFAULT_DATA = join(dirname(fileURLToPath(import.meta.url)), 'data')
const USAGE =
  'usage: node --import tsx plugins/northwind/cli.ts --url <api origin> --token <token> [--data <dir>] [--orders <n>] [--check]'

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    token: { type: 'string' },
    data: { type: 'string' },
    orders: { type: 'string' },
    check: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
})
if (values.help || !values.url || !values.token) {
  console.error(USAGE)
  process.exit(values.help ? 0 : 2)
}
const orders = values.orders === undefined ? undefined : Number(values.orders)
if (orders !== undefined && (!Number.isInteger(orders) || orders < 1)) {
  console.error(`--orders must be a positive whole number\n${USAGE}`)
  process.exit(2)
}
const dataDir = values.data ?? DEFAULT_DATA
const token = values.token

try {
  const result = await importNorthwind({
    baseUrl: values.url,
    token,
    dataDir,
    ...(orders ? { orders } : {}),
    log: (l) => console.log(l),
  })
  console.log(JSON.stringify(result, null, 2))
  if (values.check) {
    const origin = values.url.replace(/\/+$/, '')
    const got = await pluginTotals(async (method, path) => {
      const res = await fetch(origin + path, { method, headers: { authorization: `Bearer ${token}` } })
      return { status: res.status, body: await res.json() }
    })
    const want = csvTotals(await readNorthwind(dataDir, orders))
    const same =
      got.total === want.total &&
      JSON.stringify(got.byCustomer) === JSON.stringify(want.byCustomer) &&
      JSON.stringify(got.byProduct) === JSON.stringify(want.byProduct)
    console.log(
      `sales total: plugins ${got.total}, CSV ${want.total}; per customer and per product ${same ? 'equal' : 'DIFFERENT'}`,
    )
    if (!same) process.exit(1)
  }
} catch (err) {
  console.error(`import failed: ${(err as Error).message}`)
  process.exit(1)
}
