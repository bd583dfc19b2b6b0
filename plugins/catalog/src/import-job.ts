// Large CSV imports as a job: POST /imports/:kind checks every row first (a bad row answers 422
// with the per-row report, and nothing is written), stores the rows in chunks and starts the
// `csvImport` workflow, which writes one chunk per step — each step its own transaction, within
// the sandbox's host-call limit — and records what each row became. A row the kernel refuses is
// reported as failed (the others are still written) and the job ends `failed`; a job whose step
// keeps failing is marked `failed` by the workflow's compensation, its unwritten rows reported as
// `not_imported`. GET /imports/:id shows the progress; GET /imports/:id/rows the per-row report.
import { flow, problem, type RouteRequest, type RouteResponse } from '@trellis/plugin-sdk'
import { CAT } from './errors.js'
import type { Kind } from './csv.js'
import { checkCsv, type ImportRow, keyFieldOf, type RowOutcome, tally, writeRows } from './import.js'
import type { Ctx } from './types.js'

/** Rows per step: a product row costs an insert or update and an event (2 of the 200 host calls). */
export const CHUNK_ROWS = 80
/** Rows per job: the request that starts it parses and checks them all within the sandbox's CPU limit. */
export const MAX_JOB_ROWS = 5000

/** An import job as GET /imports/:id shows it. */
export interface ImportJob {
  kind: Kind
  upsert: boolean
  status: 'running' | 'done' | 'failed'
  total: number
  processed: number
  created: number
  updated: number
  unchanged: number
  /** Rows the kernel refused to write. */
  failed?: number
  /** Why the job stopped before its end, when it did. */
  error?: string
  chunks: number
  startedAt: string
  finishedAt?: string
  workflowInstance?: string
}

/** One stored chunk of a job: its rows, then what each became. */
export interface ImportChunk {
  importId: string
  seq: number
  rows: ImportRow[]
  results?: RowOutcome[]
}

type Stored<T> = T & { id: string; version: number }

/** POST /imports/:kind — checks the whole file, then imports it as a job; answers 202 with where to follow it. */
export async function startImport(
  req: RouteRequest<{ csv: string; upsert?: boolean }, { kind: Kind }>,
  ctx: Ctx,
): Promise<RouteResponse> {
  const kind = req.params.kind
  const upsert = Boolean(req.body.upsert)
  const checked = await checkCsv(ctx, kind, req.body.csv, upsert, MAX_JOB_ROWS)
  if ('problem' in checked) return checked.problem
  const rows = checked.rows
  const chunks = Math.max(1, Math.ceil(rows.length / CHUNK_ROWS))
  const job = (await ctx.data.imports.insert({
    kind,
    upsert,
    status: 'running',
    total: rows.length,
    processed: 0,
    created: 0,
    updated: 0,
    unchanged: 0,
    chunks,
    startedAt: new Date().toISOString(),
  })) as Stored<ImportJob>
  for (let seq = 0; seq < chunks; seq++)
    await ctx.data.importChunks.insert({
      importId: job.id,
      seq,
      rows: rows.slice(seq * CHUNK_ROWS, (seq + 1) * CHUNK_ROWS),
    })
  const { instanceId } = await ctx.workflows.start('csvImport', { importId: job.id }, { startKey: job.id })
  const started = (await ctx.data.imports.update(
    job.id,
    { workflowInstance: instanceId },
    job.version,
  )) as Stored<ImportJob>
  return {
    status: 202,
    headers: { location: `imports/${job.id}` },
    body: view(started),
  }
}

function view(job: Stored<ImportJob>) {
  const { version: _v, ...rest } = job
  return { ...rest, progress: job.total ? Math.round((job.processed / job.total) * 1000) / 1000 : 1 }
}

/** GET /imports/:id — the job's status and counts. */
export async function getImport(req: RouteRequest<null, { id: string }>, ctx: Ctx): Promise<RouteResponse> {
  const job = (await ctx.data.imports.get(req.params.id)) as Stored<ImportJob> | null
  return job ? { status: 200, body: view(job) } : problem(CAT.IMPORT_NOT_FOUND, `no import ${req.params.id}`)
}

/** GET /imports/:id/rows — what each row became, in row order, a chunk of rows per page (`?after=<row>`). */
export async function importRows(
  req: RouteRequest<null, { id: string }, { after?: string }>,
  ctx: Ctx,
): Promise<RouteResponse> {
  const job = (await ctx.data.imports.get(req.params.id)) as Stored<ImportJob> | null
  if (!job) return problem(CAT.IMPORT_NOT_FOUND, `no import ${req.params.id}`)
  const after = Number(req.query.after ?? 0)
  const page = await ctx.data.importChunks.find({
    where: { importId: job.id, seq: { gte: Math.floor(after / CHUNK_ROWS) } },
    sort: [{ field: 'seq', direction: 'asc' }],
    limit: 10,
  })
  // Rows not written yet are pending while the job runs; once it failed they never will be.
  const unwritten = job.status === 'failed' ? 'not_imported' : 'pending'
  type Reported = Omit<RowOutcome, 'outcome'> & { outcome: RowOutcome['outcome'] | typeof unwritten }
  const items = (page.items as ImportChunk[])
    .flatMap(
      (c): Reported[] =>
        c.results ??
        c.rows.map((r) => ({ row: r.row, key: String(r.record[keyFieldOf(job.kind)]), outcome: unwritten })),
    )
    .filter((r) => r.row > after)
  const last = items[items.length - 1]
  return {
    status: 200,
    body: { items, next: last && last.row < job.total ? `?after=${last.row}` : null },
  }
}

/** The `csvImport` workflow's first step: hands the job to `importChunk`; its compensation is `markFailed`. */
export async function begin(input: { importId: string }) {
  return { importId: input.importId, seq: 0 }
}

/** The `csvImport` workflow's step: writes chunk `seq`, counts it, and goes on to the next. */
export async function importChunk(input: { importId: string; seq: number }, ctx: Ctx) {
  const job = (await ctx.data.imports.get(input.importId)) as Stored<ImportJob> | null
  if (!job) return flow.fail(`import ${input.importId} is gone`)
  const [chunk] = (await ctx.data.importChunks.find({ where: { importId: job.id, seq: input.seq }, limit: 1 }))
    .items as Array<Stored<ImportChunk>>
  if (!chunk) return flow.fail(`import ${job.id} has no chunk ${input.seq}`)
  const results = await writeRows(ctx, job.kind, chunk.rows, { reportRefused: true })
  await ctx.data.importChunks.update(chunk.id, { results }, chunk.version)
  const n = tally(results)
  const last = input.seq + 1 >= job.chunks
  const failed = (job.failed ?? 0) + n.failed
  await ctx.data.imports.update(
    job.id,
    {
      processed: job.processed + results.length,
      created: job.created + n.created,
      updated: job.updated + n.updated,
      unchanged: job.unchanged + n.unchanged,
      failed,
      ...(last
        ? {
            status: failed ? 'failed' : 'done',
            ...(failed ? { error: `${failed} of ${job.total} rows were refused (see the per-row report)` } : {}),
            finishedAt: new Date().toISOString(),
          }
        : {}),
    },
    job.version,
  )
  return last
    ? flow.complete({ importId: job.id, total: job.total, failed })
    : flow.next('importChunk', { importId: job.id, seq: input.seq + 1 })
}

/**
 * The compensation of `begin`: the workflow failed (a step kept failing, or a chunk was missing),
 * so the job is marked failed. Chunks written before stay written and reported; the rest are
 * reported as not imported.
 */
export async function markFailed(input: { importId: string }, ctx: Ctx) {
  const job = (await ctx.data.imports.get(input.importId)) as Stored<ImportJob> | null
  if (job?.status !== 'running') return { importId: input.importId, marked: false }
  await ctx.data.imports.update(
    job.id,
    {
      status: 'failed',
      error: `the import stopped after ${job.processed} of ${job.total} rows; the rest were not imported (send the file again with upsert: true to finish it)`,
      finishedAt: new Date().toISOString(),
    },
    job.version,
  )
  return { importId: job.id, marked: true }
}
