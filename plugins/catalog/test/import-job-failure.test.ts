// The csvImport workflow's compensation on the SDK's in-memory host: when a job's step keeps
// failing, the workflow fails and `markFailed` (the compensation of `begin`) marks the job
// failed — chunks written before stay reported as written, the rest as not imported.
// (A row the kernel refuses is tested on the real kernel, in catalog.test.ts.)
import t from 'tap'
import { createTestHost } from '@trellis/plugin-sdk'
import { catalogPlugin } from '../src/index.js'

const csvOf = (n: number) =>
  `sku,name,category,supplier,discontinued\n${Array.from({ length: n }, (_, i) => `STOP-${i + 1},Item ${i + 1},1,1,0`).join('\n')}\n`

async function startedJob() {
  const host = createTestHost(catalogPlugin)
  for (const [kind, csv] of [
    ['categories', 'code,name\n1,Beverages\n'],
    ['suppliers', 'code,name\n1,Exotic Liquids\n'],
  ] as const)
    await host.route('POST /import/:kind', { params: { kind }, body: { csv } })
  const started = await host.route('POST /imports/:kind', { params: { kind: 'products' }, body: { csv: csvOf(200) } })
  const job = started.body as { id: string }
  return { host, job, started }
}

async function report(host: Awaited<ReturnType<typeof startedJob>>['host'], id: string) {
  const rows: Array<{ row: number; outcome: string }> = []
  let after: string | undefined
  do {
    const page = (await host.route('GET /imports/:id/rows', { params: { id }, query: after ? { after } : {} }))
      .body as {
      items: typeof rows
      next: string | null
    }
    rows.push(...page.items)
    after = page.next ? page.next.replace('?after=', '') : undefined
  } while (after)
  return rows
}

t.test('the workflow declares markFailed as the compensation of its first step', async (t) => {
  const wf = catalogPlugin.manifest.workflows!.csvImport!
  t.equal(wf.steps[0], 'begin', 'begin runs first, so every later failure is compensated')
  t.same(wf.compensate, { begin: 'markFailed' })
})

t.test('a job that stopped after its first chunk is marked failed; the unwritten rows are not imported', async (t) => {
  const { host, job, started } = await startedJob()
  t.equal(started.status, 202)
  t.same(
    host.started.map((s) => [s.workflow, s.input]),
    [['csvImport', { importId: job.id }]],
  )
  const first = await host.step('csvImport.begin', host.started[0]!.input)
  t.same(first, { importId: job.id, seq: 0 }, 'begin hands the job to importChunk')
  t.same(await host.step('csvImport.importChunk', first), {
    $workflow: 'next',
    step: 'importChunk',
    input: { importId: job.id, seq: 1 },
  })
  const during = (await host.route('GET /imports/:id', { params: { id: job.id } })).body as any
  t.match(during, { status: 'running', processed: 80 })
  t.equal((await report(host, job.id)).filter((r) => r.outcome === 'pending').length, 120, 'pending while running')

  // The next chunk kept failing: the kernel ends the workflow and runs the compensation.
  t.same(await host.step('csvImport.markFailed', first), { importId: job.id, marked: true })
  const failed = (await host.route('GET /imports/:id', { params: { id: job.id } })).body as any
  t.match(failed, { status: 'failed', total: 200, processed: 80, created: 80 })
  t.match(failed.error, /stopped after 80 of 200 rows/)
  t.type(failed.finishedAt, 'string')
  const rows = await report(host, job.id)
  t.equal(rows.length, 200)
  t.ok(
    rows.slice(0, 80).every((r) => r.outcome === 'created'),
    'the written chunk keeps its outcomes',
  )
  t.ok(
    rows.slice(80).every((r) => r.outcome === 'not_imported'),
    'the rest are reported as not imported',
  )
  t.equal(host.collections.get('products')!.size, 80)
})

t.test('the compensation leaves a finished job as it is', async (t) => {
  const { host, job } = await startedJob()
  let input: unknown = await host.step('csvImport.begin', { importId: job.id })
  for (let i = 0; i < 3; i++) input = ((await host.step('csvImport.importChunk', input)) as any).input
  t.match((await host.route('GET /imports/:id', { params: { id: job.id } })).body, { status: 'done', created: 200 })
  t.same(await host.step('csvImport.markFailed', { importId: job.id }), { importId: job.id, marked: false })
  t.match((await host.route('GET /imports/:id', { params: { id: job.id } })).body, { status: 'done' })
})
