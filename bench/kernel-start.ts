// `npm run bench -- kernel-start`: what a migrated template saves when a kernel starts on a new
// database (docs/adr/0045-migrated-database-templates.md). Rounds alternate between the two ways
// of getting a database migrated to head, each ending with a kernel ready to serve:
// - embedded: a new PGlite database migrated from empty, vs one loaded from the template dump;
// - PostgreSQL: `CREATE DATABASE` then every migration, vs `CREATE DATABASE … TEMPLATE`;
// - `trellis-plugin dev`'s kernel (one tenant, signed in): without its cache, vs with it.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createKernel } from '../core/src/kernel.js'
import { loadConfig } from '../core/src/config.js'
import { embeddedTemplate } from '../core/src/db/embedded-template.js'
import { startDevKernel } from '../core/src/plugins/dev-kernel.js'
import { PG_ADMIN_URL, createTestDatabase } from '../core/test/helpers/test-kernel.js'
import { pgTemplate } from '../core/test/helpers/pg-template.js'
import { loadAverage, median } from './_harness.js'

const ROUNDS = Number(process.env.BENCH_START_ROUNDS ?? 3)

const env = (extra: NodeJS.ProcessEnv = {}) =>
  loadConfig({
    LOG_LEVEL: 'silent',
    TRELLIS_SECRET_KEY: randomBytes(32).toString('hex'),
    TRELLIS_DATA_DIR: '/nonexistent/trellis-bench',
    ...extra,
  })

async function timed(fn: () => Promise<() => Promise<void>>): Promise<number> {
  const start = performance.now()
  const close = await fn()
  const ms = performance.now() - start
  await close()
  return ms
}

function report(what: string, before: number[], after: number[]) {
  const b = median(before)
  const a = median(after)
  console.log(
    `${what.padEnd(44)} ${b.toFixed(0).padStart(6)} ms -> ${a.toFixed(0).padStart(6)} ms  (${(b / a).toFixed(1)}x faster; ${loadAverage()})`,
  )
}

export async function run(): Promise<void> {
  const cacheDir = await mkdtemp(join(tmpdir(), 'trellis-bench-cache-'))
  try {
    const built = performance.now()
    const dump = await embeddedTemplate(cacheDir)
    console.log(`embedded template made once in ${(performance.now() - built).toFixed(0)} ms`)
    await pgTemplate(PG_ADMIN_URL)
    const rows: Record<string, [number[], number[]]> = { embedded: [[], []], postgres: [[], []], dev: [[], []] }
    for (let round = 0; round < ROUNDS; round++) {
      for (const useTemplate of round % 2 ? [true, false] : [false, true]) {
        const i = useTemplate ? 1 : 0
        rows.embedded![i].push(
          await timed(async () => {
            const k = await createKernel({
              config: env(),
              embeddedDir: 'memory://',
              ...(useTemplate ? { embeddedTemplate: dump } : {}),
              migrate: true,
            })
            return () => k.close()
          }),
        )
        rows.postgres![i].push(
          await timed(async () => {
            const db = await createTestDatabase({ empty: !useTemplate })
            const k = await createKernel({ config: env({ DATABASE_URL: db.url }), migrate: true })
            return async () => {
              await k.close()
              await db.drop()
            }
          }),
        )
        rows.dev![i].push(
          await timed(async () => {
            const k = await startDevKernel({ port: 0, cacheDir: useTemplate ? cacheDir : false })
            return () => k.close()
          }),
        )
      }
    }
    report('embedded kernel: migrate vs template', ...rows.embedded!)
    report('PostgreSQL kernel: migrate vs template', ...rows.postgres!)
    report('dev kernel (listening, tenant): no cache vs cache', ...rows.dev!)
  } finally {
    await rm(cacheDir, { recursive: true, force: true })
  }
}
