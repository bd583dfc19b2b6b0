// The catalog plugin on the real kernel: CSV imports are all-or-nothing with a per-row report.
import t from 'tap'
import { lintErp, startErpKernel } from '../../support/kernel.js'
import { DB_KINDS } from '../../../core/test/helpers/test-kernel.js'

// One kernel per database, shared by every test of the file.
for (const kind of DB_KINDS)
  t.test(`on ${kind}`, async (t) => {
    const dev = await startErpKernel(['catalog'], {}, kind)
    t.teardown(() => dev.close())
    const r = (method: string, path: string, body?: unknown) =>
      dev.request(method, path, body === undefined ? {} : { body }) as Promise<{ status: number; body: any }>
    const C = '/v1/x/catalog'
    const products = () => dev.records('@trellis/catalog', 'products')
    const events = async () => (await dev.events('@trellis/catalog')).map((e) => `${e.type} ${e.subject}`)
    /** An import's per-row report, every page of it. */
    const rowsOf = async (id: string) => {
      const report: any[] = []
      let next = ''
      do {
        const page = (await r('GET', `${C}/imports/${id}/rows${next}`)).body
        report.push(...page.items)
        next = page.next ?? ''
      } while (next)
      return report
    }

    t.test('the manifest passes the lint with no warnings', async (t) => {
      t.same(await lintErp('catalog'), { errors: [], warnings: [] })
    })

    t.test('categories and suppliers import from CSV (quoted fields included)', async (t) => {
      const cats = await r('POST', `${C}/import/categories`, {
        csv: 'code,name,description\r\n1,Beverages,"Soft drinks, coffees, teas, beers, and ales"\r\n2,Condiments,"Sauces ""and"" spreads"\r\n',
      })
      t.same(cats.body, { kind: 'categories', rows: 2, created: 2, updated: 0, unchanged: 0 })
      const list = (await r('GET', `${C}/categories`)).body.items
      t.same(
        list.map((c: any) => [c.code, c.description]),
        [
          ['1', 'Soft drinks, coffees, teas, beers, and ales'],
          ['2', 'Sauces "and" spreads'],
        ],
      )
      t.equal(
        (
          await r('POST', `${C}/import/suppliers`, {
            csv: 'code,name,country\n1,Exotic Liquids,UK\n2,New Orleans Cajun Delights,USA\n',
          })
        ).body.created,
        2,
      )
    })

    t.test('a CSV with bad rows answers 422 with every problem by row, and writes nothing', async (t) => {
      const csv = [
        'sku,name,category,supplier,quantity_per_unit,discontinued',
        'NW-1,Chai,1,1,10 boxes x 20 bags,0', // fine
        'NW-2,,1,1,24 - 12 oz bottles,0', // no name
        'NW-3,Aniseed Syrup,9,1,12 - 550 ml bottles,0', // unknown category
        'NW-1,Chai again,1,1,,0', // duplicate SKU
        'NW-5,Cajun Seasoning,2,2,48 - 6 oz jars,maybe', // bad flag
        'NW-6,Boysenberry,2,7', // too few fields
      ].join('\n')
      const res = await r('POST', `${C}/import/products`, { csv })
      t.equal(res.status, 422)
      t.equal(res.body.code, 'CAT_ERR_CSV_ROWS')
      t.same(
        res.body.errors.map((e: any) => [e.row, e.field ?? null, e.code]),
        [
          [2, 'name', 'required'],
          [3, 'category', 'unknown_category'],
          [4, 'sku', 'duplicate'],
          [5, 'discontinued', 'invalid'],
          [6, null, 'column_count'],
        ],
      )
      t.same(await products(), [], 'not even the good row')
      t.same(await events(), [], 'no event')

      const header = await r('POST', `${C}/import/products`, { csv: 'sku,title\nX,Y\n' })
      t.equal(header.status, 422)
      t.equal(header.body.code, 'CAT_ERR_CSV_HEADER')
      t.same([header.body.missingColumns, header.body.unknownColumns], [['name', 'category', 'supplier'], ['title']])
      const many = await r('POST', `${C}/import/products`, {
        csv: `sku,name,category,supplier\n${Array.from({ length: 96 }, (_, i) => `S${i},P${i},1,1`).join('\n')}`,
      })
      t.equal(many.status, 413, 'more rows than one invocation may write')
      t.equal(many.body.code, 'CAT_ERR_CSV_TOO_MANY_ROWS')
      t.equal((await r('POST', `${C}/import/products`, { csv: '' })).body.code, 'CAT_ERR_CSV_EMPTY')
      t.equal((await r('POST', `${C}/import/things`, { csv: 'a\n' })).status, 400, 'unknown kind')
      t.same(await products(), [])
    })

    t.test('a good CSV creates every product and announces each', async (t) => {
      const csv =
        'sku,name,category,supplier,quantity_per_unit,discontinued\nNW-1,Chai,1,1,10 boxes x 20 bags,0\nNW-2,Chang,1,1,24 - 12 oz bottles,1\nNW-3,Aniseed Syrup,2,1,12 - 550 ml bottles,false\n'
      const res = await r('POST', `${C}/import/products`, { csv })
      t.same(res.body, { kind: 'products', rows: 3, created: 3, updated: 0, unchanged: 0 })
      const chai = (await r('GET', `${C}/products/NW-1`)).body
      t.match(chai, {
        sku: 'NW-1',
        name: 'Chai',
        category: '1',
        supplier: '1',
        quantityPerUnit: '10 boxes x 20 bags',
        unit: 'boxes',
        packSize: 10,
        discontinued: false,
      })
      t.match((await r('GET', `${C}/products/NW-2`)).body, { packSize: 24, unit: '12 oz bottles', discontinued: true })
      t.same(await events(), [
        'catalog.product.created NW-1',
        'catalog.product.created NW-2',
        'catalog.product.created NW-3',
      ])

      const again = await r('POST', `${C}/import/products`, { csv })
      t.equal(again.status, 422, 'existing SKUs are refused unless upserting')
      t.same(
        again.body.errors.map((e: any) => e.code),
        ['exists', 'exists', 'exists'],
      )

      const upsert = await r('POST', `${C}/import/products`, {
        csv: csv.replace('NW-1,Chai,1,1,10 boxes x 20 bags,0', 'NW-1,Chai,1,1,10 boxes x 20 bags,1'),
        upsert: true,
      })
      t.same(upsert.body, { kind: 'products', rows: 3, created: 0, updated: 1, unchanged: 2 })
      const updated = (await dev.events('@trellis/catalog')).filter((e) => e.type === 'catalog.product.updated')
      t.same(
        updated.map((e) => e.data),
        [{ sku: 'NW-1', productId: chai.id, changes: ['discontinued'], discontinued: true }],
        'only the changed product, with what changed',
      )
    })

    t.test('single products: checked references, 404s, patch, list', async (t) => {
      const bad = await r('POST', `${C}/products`, { sku: 'X-1', name: 'Ghost', category: 'nope', supplier: '1' })
      t.equal(bad.status, 422)
      t.equal(bad.body.code, 'CAT_ERR_INVALID_PRODUCT')
      t.equal(
        (await r('POST', `${C}/products`, { sku: 'NW-1', name: 'Chai', category: '1', supplier: '1' })).body.code,
        'CAT_ERR_SKU_EXISTS',
      )
      const made = await r('POST', `${C}/products`, {
        sku: 'X-2',
        name: 'Mate',
        category: '1',
        supplier: '2',
        quantityPerUnit: '6 - 1 kg bags',
      })
      t.equal(made.status, 201)
      t.match(made.body, { packSize: 6, unit: '1 kg bags', discontinued: false })
      t.equal((await r('GET', `${C}/products/NOPE`)).body.code, 'CAT_ERR_PRODUCT_NOT_FOUND')
      t.equal((await r('PATCH', `${C}/products/X-2`, { name: 'Yerba mate' })).body.name, 'Yerba mate')
      t.equal((await r('PATCH', `${C}/products/X-2`, { category: 'nope' })).status, 422)
      t.equal((await r('PATCH', `${C}/products/X-2`, { packSize: -1 })).status, 400)
      const page = (await r('GET', `${C}/products?category=2&limit=10`)).body
      t.same(
        page.items.map((p: any) => p.sku),
        ['NW-3'],
      )
    })

    t.test('actions for other plugins', async (t) => {
      const out = (await dev.invoke('@trellis/catalog', 'action', 'getProducts', {
        skus: ['NW-1', 'NW-404', 'NW-1'],
      })) as any
      t.same([out.products.map((p: any) => p.sku), out.missing], [['NW-1'], ['NW-404']])
      t.equal(
        ((await dev.invoke('@trellis/catalog', 'action', 'getProduct', { sku: 'NW-3' })) as any).name,
        'Aniseed Syrup',
      )
      t.equal(await dev.invoke('@trellis/catalog', 'action', 'getProduct', { sku: 'none' }), null)
    })

    t.test(
      'a large CSV imports as a job: checked first, then chunk by chunk, with progress and a per-row report',
      async (t) => {
        const rows = (n: number, flag = '0') =>
          Array.from({ length: n }, (_, i) => `JOB-${i + 1},"Product ${i + 1}, boxed",1,1,${flag}`)
        const csvOf = (lines: string[]) => `sku,name,category,supplier,discontinued\n${lines.join('\n')}\n`
        const before = (await products()).length

        const small = await r('POST', `${C}/import/products`, { csv: csvOf(rows(200)) })
        t.equal(small.body.code, 'CAT_ERR_CSV_TOO_MANY_ROWS')
        t.match(small.body.detail, /POST \/imports\/products/, 'the request route points to the job')

        const bad = await r('POST', `${C}/imports/products`, {
          csv: csvOf([...rows(150), 'JOB-X,,1,1,0', 'JOB-Y,Y,9,1,0']),
        })
        t.equal(bad.status, 422, 'every row is checked before anything is written')
        t.same(
          bad.body.errors.map((e: any) => [e.row, e.code]),
          [
            [151, 'required'],
            [152, 'unknown_category'],
          ],
        )
        t.equal((await dev.records('@trellis/catalog', 'imports')).length, 0, 'no job was started')
        t.equal((await products()).length, before)
        const tooMany = await r('POST', `${C}/imports/products`, { csv: csvOf(rows(5001)) })
        t.equal(tooMany.body.code, 'CAT_ERR_CSV_TOO_MANY_ROWS')

        const started = await r('POST', `${C}/imports/products`, { csv: csvOf(rows(200)) })
        t.equal(started.status, 202, JSON.stringify(started.body))
        t.match(started.body, { kind: 'products', status: 'running', total: 200 })
        const seen: number[] = []
        let job: any
        for (let i = 0; i < 600; i++) {
          job = (await r('GET', `${C}/imports/${started.body.id}`)).body
          seen.push(job.processed)
          if (job.status === 'done') break
          await new Promise((done) => setTimeout(done, 100))
        }
        t.match(job, {
          status: 'done',
          total: 200,
          processed: 200,
          created: 200,
          updated: 0,
          unchanged: 0,
          progress: 1,
        })
        t.ok(
          seen.every((n, i) => i === 0 || n >= seen[i - 1]!),
          'progress only goes forward',
        )
        t.equal((await products()).length, before + 200)
        t.equal((await r('GET', `${C}/products/JOB-17`)).body.name, 'Product 17, boxed')
        const created = (await events()).filter((e) => e.startsWith('catalog.product.created JOB-'))
        t.equal(created.length, 200, 'each product is announced')

        const report = await rowsOf(started.body.id)
        t.equal(report.length, 200, 'a row each')
        t.same(report[0], { row: 1, key: 'JOB-1', outcome: 'created' })
        t.ok(report.every((x, i) => x.row === i + 1 && x.outcome === 'created'))

        const again = await r('POST', `${C}/imports/products`, {
          csv: csvOf([...rows(200).slice(0, 199), 'JOB-200,"Product 200, boxed",1,1,1']),
          upsert: true,
        })
        t.equal(again.status, 202)
        let second: any
        for (let i = 0; i < 600 && second?.status !== 'done'; i++) {
          if (i) await new Promise((done) => setTimeout(done, 100))
          second = (await r('GET', `${C}/imports/${again.body.id}`)).body
        }
        t.match(second, { status: 'done', created: 0, updated: 1, unchanged: 199 })
        t.equal(
          (await r('GET', `${C}/imports/00000000-0000-7000-8000-000000000000`)).body.code,
          'CAT_ERR_IMPORT_NOT_FOUND',
        )
      },
    )

    t.test(
      'a row the kernel refuses fails alone: the job writes the others and ends failed, the row reported with its code',
      async (t) => {
        const long = 'x'.repeat(250) // the products collection allows names of at most 200 characters
        const lines = Array.from({ length: 100 }, (_, i) => `FAIL-${i + 1},${i === 89 ? long : `Item ${i + 1}`},1,1,0`)
        const csv = `sku,name,category,supplier,discontinued\n${lines.join('\n')}\n`
        const before = (await products()).length

        const inRequest = await r('POST', `${C}/import/products`, { csv: csv.split('\n').slice(0, 91).join('\n') })
        t.equal(inRequest.body.code, 'KRN_ERR_VALIDATION_FAILED', 'in the request: all or nothing')
        t.equal((await products()).length, before, 'nothing was written')

        const started = await r('POST', `${C}/imports/products`, { csv })
        t.equal(started.status, 202, JSON.stringify(started.body))
        let job: any
        for (let i = 0; i < 600; i++) {
          if (i) await new Promise((done) => setTimeout(done, 100))
          job = (await r('GET', `${C}/imports/${started.body.id}`)).body
          if (job.status !== 'running') break
        }
        t.match(job, { status: 'failed', total: 100, processed: 100, created: 99, failed: 1, progress: 1 })
        t.match(job.error, /1 of 100 rows were refused/)
        t.type(job.finishedAt, 'string')
        t.equal((await products()).length, before + 99, 'every other row was written')
        t.equal((await r('GET', `${C}/products/FAIL-90`)).body.code, 'CAT_ERR_PRODUCT_NOT_FOUND')
        t.equal((await r('GET', `${C}/products/FAIL-91`)).body.name, 'Item 91')

        const report = await rowsOf(started.body.id)
        t.equal(report.length, 100)
        t.match(report[89], { row: 90, key: 'FAIL-90', outcome: 'failed', code: 'KRN_ERR_VALIDATION_FAILED' })
        t.match(report[89].message, /name/, 'the report says which field')
        t.same(
          report.filter((x) => x.outcome !== 'created').map((x) => x.row),
          [90],
          'the other 99 rows were created',
        )
      },
    )
  })
