// `npm run bench -- knowledge`: knowledge retrieval and ingestion.
// - Corpus (bench/_kb-corpus.ts, seeded): Markdown documents of 50 sections from a ~6,000-word
//   vocabulary (the vendored Northwind CSVs' words, programme terms and generated word forms) drawn
//   with a Zipf law; each section has its own heading and topic terms, and each question asks about
//   one section (a common word and 3 of its terms). The earlier 80-word uniform corpus made every
//   chunk a full-text match for every question, which no real knowledge base does.
// - Ingestion: documents parsed, chunked on structure, embedded with the local lexical embedder
//   and written (chunks/s), as the document route does it: one tenant transaction per document
//   (its chunks in multi-row inserts), then approved.
// - Retrieval: the hybrid search (`searchBase`: full-text ranking over the question's rarest terms
//   + vector similarity fused by RRF, filtered by status, roles and tags) over 10,000 chunks of one
//   tenant among 10 tenants, through the kernel's path (a tenant transaction: role trellis_app,
//   row-level security, the caller's roles), against the same statements run bare as the database
//   owner (no role switch, no RLS) on the same connection — alternating rounds, both sides checked
//   for passages. The vector side is the exact scan in process over the base's cached vectors
//   (ADR 0086); the full-text side ranks in SQL the chunks its terms can match, reached by primary
//   key (ADR 0100). Both databases by default, one after the other: PGlite (the embedded database,
//   with pgvector) and PostgreSQL (without pgvector here); BENCH_KB_DB=pglite or postgres for one. CPU per query: this process's (the embedded database runs in it) plus, on
//   PostgreSQL, the backends'. Ingestion also prints its CPU time per chunk.
import { randomUUID } from 'node:crypto'
import { v7 as uuidv7 } from 'uuid'
import { Database } from '../core/src/db/database.js'
import { embedLexical } from '../core/src/ai/local/lexical-embedder.js'
import { embedder } from '../core/src/knowledge/embedding.js'
import { BaseIndexes } from '../core/src/knowledge/base-index.js'
import { detectVector, searchBase, type SearchPath } from '../core/src/knowledge/retrieval.js'
import { pidsCpuMs } from './_proc-cpu.js'
import { type BaseRow, createBase, ingestDocument, setDocumentStatus } from '../core/src/knowledge/store.js'
import { loadAverage, median, percentile, withBenchDatabase } from './_harness.js'
import { corpus as kbCorpus } from './_kb-corpus.js'

const TENANTS = 10
const CHUNKS = Number(process.env.BENCH_KB_CHUNKS ?? 10_000)
const QUERIES = Number(process.env.BENCH_KB_QUERIES ?? 100)
const ROUNDS = Number(process.env.BENCH_KB_ROUNDS ?? 4)

const corpus = kbCorpus()

export async function run(): Promise<void> {
  const kinds = process.env.BENCH_KB_DB ? [process.env.BENCH_KB_DB] : ['pglite', 'postgres']
  for (const kind of kinds) {
    if (kind === 'postgres') await withBenchDatabase(`trellis_bench_kb_${process.pid}`, (url) => bench(url))
    else if (kind === 'pglite') await bench(undefined)
    else throw new Error(`BENCH_KB_DB: pglite or postgres, not ${kind}`)
  }
}

async function bench(databaseUrl: string | undefined): Promise<void> {
  const db = await Database.open({ databaseUrl, dataDir: '/tmp/trellis-bench-unused', embeddedDir: 'memory://' })
  try {
    await db.migrate('up')
    const hasVector = await db.inOrg(null, detectVector)
    console.log(
      `database: ${databaseUrl ? 'PostgreSQL' : 'PGlite (embedded)'}; vectors: the exact scan in process (pgvector ${hasVector ? 'present, for the fallback only' : 'absent'})`,
    )
    const tenants = Array.from({ length: TENANTS }, () => randomUUID())
    await db.asOwner(async (tx) => {
      for (const [i, id] of tenants.entries())
        await tx.sql('insert into tenants (id, name, slug) values (?::uuid, ?, ?)', [
          id,
          `t${i}`,
          `kb-bench-${i}-${id}`,
        ])
    })
    const embed = embedder(undefined)
    const user = uuidv7()
    const perTenant = Math.ceil(CHUNKS / 50)
    let target: BaseRow | undefined
    let ingested = 0
    let ingestMs = 0
    const processCpuMs = () => {
      const u = process.cpuUsage()
      return (u.user + u.system) / 1000
    }
    const ingestCpu0 = processCpuMs()
    for (const [i, tenant] of tenants.entries()) {
      const docs = i === 0 ? perTenant : Math.ceil(perTenant / 20)
      const base = await db.inOrg(tenant, (tx) => createBase(tx, tenant, { slug: 'handbook', name: 'Handbook' }, user))
      if (i === 0) target = base
      for (let d = 0; d < docs; d++) {
        const t0 = performance.now()
        const doc = await db.inOrg(tenant, async (tx) => {
          const row = await ingestDocument(
            tx,
            base,
            {
              title: `Doc ${d}`,
              source: `doc-${d}.md`,
              format: 'markdown',
              content: corpus.document(i * 100_000 + d, 50),
              roles: d % 5 === 0 ? ['tenant_admin'] : [],
            },
            embed,
            user,
            hasVector,
          )
          await setDocumentStatus(tx, base, row.id, 'approved', user)
          return row
        })
        ingestMs += performance.now() - t0
        ingested += doc.chunk_count
      }
    }
    // On PostgreSQL the pool's backends did the database's share (their CPU since they started).
    const ingestBackends = databaseUrl
      ? (
          await db.asOwner((tx) =>
            tx.sql<{ pid: number }>('select pid from pg_stat_activity where datname = current_database()'),
          )
        ).map((r) => r.pid)
      : []
    const ingestCpu = processCpuMs() - ingestCpu0 + pidsCpuMs(ingestBackends)
    console.log(
      `ingestion: ${ingested} chunks in ${(ingestMs / 1000).toFixed(1)} s = ${(ingested / (ingestMs / 1000)).toFixed(0)} chunks/s (parse, chunk, local lexical embedding, insert, approve); CPU ${(ingestCpu / ingested).toFixed(2)} ms/chunk = ${(ingested / (ingestCpu / 1000)).toFixed(0)} chunks per CPU-second (${loadAverage()})`,
    )
    const base = target as BaseRow
    const [{ n } = { n: 0 }] = await db.asOwner((tx) =>
      tx.sql<{ n: number }>('select count(*)::int as n from knowledge_chunks where kb_id = ?::uuid', [base.id]),
    )
    console.log(`target tenant: ${n} chunks in one base, ${TENANTS} tenants`)

    // Questions about sections of the target tenant's documents that tenant_member may read.
    const readable = Math.ceil((perTenant * 4) / 5)
    const questions = Array.from({ length: QUERIES }, (_, i) =>
      corpus.question(i, readable, 50, (d) => Math.floor(d / 4) * 5 + (d % 4) + 1),
    )
    const vectors = embedLexical(questions)
    const path: SearchPath = { hasVector, indexes: new BaseIndexes() }
    const search = (tx: Parameters<Parameters<Database['asOwner']>[0]>[0], i: number) =>
      searchBase(tx, base, vectors[i] as number[], questions[i] as string, ['tenant_member'], 5, {}, path)
    const checked = (side: string, found: unknown[]) => {
      if (found.length === 0) throw new Error(`${side}: no passage found`)
    }
    const kernelSide = async (i: number) => {
      checked('kernel', await db.inOrg(tenants[0] as string, (tx) => search(tx, i)))
    }
    const bareSide = async (i: number) => {
      checked('bare', await db.asOwner((tx) => search(tx, i)))
    }
    // PostgreSQL's backends of this database do the SQL work on that path: their CPU counts too.
    const backends = databaseUrl
      ? (
          await db.asOwner((tx) =>
            tx.sql<{ pid: number }>('select pid from pg_stat_activity where datname = current_database()'),
          )
        ).map((r) => r.pid)
      : []
    const cpuMs = () => {
      const u = process.cpuUsage()
      return (u.user + u.system) / 1000 + pidsCpuMs(backends)
    }
    const measure = async (side: (i: number) => Promise<void>) => {
      const lat: number[] = []
      const c0 = cpuMs()
      const t0 = performance.now()
      for (let i = 0; i < QUERIES; i++) {
        const s = performance.now()
        await side(i)
        lat.push(performance.now() - s)
      }
      return { lat, qps: QUERIES / ((performance.now() - t0) / 1000), cpu: (cpuMs() - c0) / QUERIES }
    }
    const w0 = performance.now()
    await measure(kernelSide)
    console.log(
      `first pass (loads the base into the process's cache): ${(performance.now() - w0).toFixed(0)} ms for ${QUERIES} queries`,
    )
    await measure(bareSide)
    const k: number[] = []
    const b: number[] = []
    const kLat: number[] = []
    const bLat: number[] = []
    const kCpu: number[] = []
    const bCpu: number[] = []
    for (let r = 0; r < ROUNDS; r++) {
      for (const side of r % 2 === 0 ? (['kernel', 'bare'] as const) : (['bare', 'kernel'] as const)) {
        const m = await measure(side === 'kernel' ? kernelSide : bareSide)
        if (side === 'kernel') {
          k.push(m.qps)
          kLat.push(...m.lat)
          kCpu.push(m.cpu)
        } else {
          b.push(m.qps)
          bLat.push(...m.lat)
          bCpu.push(m.cpu)
        }
      }
    }
    const ratios = k.map((x, i) => x / (b[i] as number))
    console.log(
      `baseline: the same statements as the owner, no RLS ${median(b).toFixed(0).padStart(6)} queries/s (rounds ${b.map((x) => x.toFixed(0)).join(', ')}); p50 ${percentile(bLat, 50).toFixed(1)} ms; CPU ${median(bCpu).toFixed(2)} ms/query`,
    )
    console.log(
      `kernel: tenant transaction, RLS, roles              ${median(k).toFixed(0).padStart(6)} queries/s (rounds ${k.map((x) => x.toFixed(0)).join(', ')}); CPU ${median(kCpu).toFixed(2)} ms/query`,
    )
    console.log(
      `hybrid query latency through the kernel path: p50 ${percentile(kLat, 50).toFixed(1)} ms, p99 ${percentile(kLat, 99).toFixed(1)} ms (targets 15 / 60); ratio ${(median(ratios) * 100).toFixed(0)} % of bare (target ≥ 50 %) (${loadAverage()})`,
    )
  } finally {
    await db.close()
  }
}
