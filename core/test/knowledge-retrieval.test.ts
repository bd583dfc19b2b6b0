// Retrieval at scale (ADR 0086, ADR 0100), on both databases: the vector side is exact (the
// in-process scan ranks as SQL ranks the same vectors), the full-text side's candidates are
// exactly the chunks SQL's own `@@` matches, the search finds the passage, a process's cache of a
// base never shows what the caller's transaction does not (new, retired and role-restricted
// documents, another tenant), and a base whose model changed is searched with its new vectors.
import t from 'tap'
import { DB_KINDS, addUser, createTenantWithAdmin, startTestKernel } from './helpers/test-kernel.js'
import { embedLexical } from '../src/ai/local/lexical-embedder.js'
import { BaseIndexes } from '../src/knowledge/base-index.js'
import { vectorLiteral } from '../src/knowledge/embedding.js'
import { searchBase } from '../src/knowledge/retrieval.js'
import type { BaseRow } from '../src/knowledge/store.js'

const TOPICS = [
  'rebates are paid within 45 days after the end of each quarter',
  'deal registration protects a registered opportunity for 90 days',
  'market development funds are claimed with proof of performance',
  'gold partners receive a discount tier on every subscription licence',
  'support incidents of critical severity get a response within one hour',
  'returns of special-order items carry a restocking fee',
  'freight for pallets is booked with the carrier of the warehouse',
  'training certificates expire after two years and need a new exam',
]

/** A guide of `n` sections, each about one topic with a distinguishing number. */
function guide(seed: number, n: number): string {
  let out = `# Guide ${seed}\n\n`
  for (let i = 0; i < n; i++)
    out += `## Section ${seed}.${i}\n\n${TOPICS[(seed + i) % TOPICS.length]} (clause ${seed}-${i}). ${TOPICS[(seed * 3 + i) % TOPICS.length]}.\n\n`
  return out
}

for (const kind of DB_KINDS)
  t.test(kind, async (t) => {
    const k = await startTestKernel(t, kind)
    const a = await createTenantWithAdmin(k, `kr-a-${kind}`)
    const member = await addUser(k, a.token, `member@kr-a-${kind}.test`, 'tenant_member')
    const post = (token: string, url: string, body: unknown = {}) =>
      k.req('POST', `/v1/knowledge${url}`, { token, body })
    const created = await post(a.token, '/bases', { slug: 'guides', name: 'Guides' })
    t.equal(created.status, 201)
    const kb = created.body.id as string
    const add = async (source: string, content: string, extra: Record<string, unknown> = {}) => {
      const doc = await post(a.token, `/${kb}/documents`, {
        title: source,
        source,
        format: 'markdown',
        content,
        ...extra,
      })
      t.equal(doc.status, 201, JSON.stringify(doc.body))
      const ok = await post(a.token, `/${kb}/documents/${doc.body.id}/approve`)
      t.equal(ok.status, 200)
      return doc.body.id as string
    }
    for (let d = 0; d < 6; d++) await add(`guide-${d}.md`, guide(d, 12))
    const hasVector = kind === 'pglite' // pgvector: only the fallback's similarity uses it

    await t.test('the vector side is exact: the in-process scan ranks as SQL ranks the same vectors', async (t) => {
      const [base] = await k.ownerSql<BaseRow>('select * from knowledge_bases where id = ?::uuid', [kb])
      const docs = (
        await k.ownerSql<{ id: string }>('select id from knowledge_documents where kb_id = ?::uuid', [kb])
      ).map((r) => r.id)
      const indexes = new BaseIndexes()
      for (const question of ['When are rebates paid?', 'restocking fee for special orders', 'clause 3-7 pallets']) {
        const [q] = embedLexical([question]) as number[][]
        const inProcess = await k.kernel.ctx.db.inOrg(a.orgId, async (tx) => {
          const view = await indexes.ensure(tx, base as BaseRow, docs)
          return indexes.scan(view, docs, q as number[], 20)
        })
        const inSql = await k.ownerSql<{ chunk_key: string }>(
          `select chunk_key from knowledge_chunks where kb_id = ?::uuid
            order by trellis_real_dot(embedding, ?::real[]) desc, chunk_key limit 20`,
          [kb, vectorLiteral(q as number[])],
        )
        t.same(
          inProcess.map((c) => c.chunkKey),
          inSql.map((r) => r.chunk_key),
          question,
        )
      }
    })

    await t.test("the full-text side's candidates are exactly the chunks SQL matches", async (t) => {
      const [base] = await k.ownerSql<BaseRow>('select * from knowledge_bases where id = ?::uuid', [kb])
      const docs = (
        await k.ownerSql<{ id: string }>('select id from knowledge_documents where kb_id = ?::uuid', [kb])
      ).map((r) => r.id)
      const indexes = new BaseIndexes()
      // Stemmed ("paid" → "paid", "registered" → "regist"), prefixes ("cert" → certificates), digits, stop words.
      for (const terms of [
        ['paid'],
        ['registered', 'opportunity'],
        ['cert'],
        ['clause', '3'],
        ['the', 'fee'],
        ['zzz'],
      ]) {
        const plan = await k.kernel.ctx.db.inOrg(a.orgId, async (tx) => {
          const view = await indexes.ensure(tx, base as BaseRow, docs)
          return indexes.lexical(view, await indexes.lexemesOf(tx, terms), 3, docs, 10_000)
        })
        const inSql = plan.query
          ? await k.ownerSql<{ chunk_key: string; document_id: string }>(
              'select document_id, chunk_key from knowledge_chunks where kb_id = ?::uuid and tsv @@ ?::tsquery',
              [kb, plan.query],
            )
          : []
        const key = (c: { documentId?: string; document_id?: string; chunkKey?: string; chunk_key?: string }) =>
          `${c.documentId ?? c.document_id}/${c.chunkKey ?? c.chunk_key}`
        t.same((plan.candidates ?? []).map(key).sort(), inSql.map(key).sort(), terms.join(' '))
        if (terms[0] !== 'zzz') t.ok(inSql.length > 0, `${terms.join(' ')} matches chunks`)
      }
      // Past the limit, no candidates: SQL tests every chunk of the visible documents.
      const many = await k.kernel.ctx.db.inOrg(a.orgId, async (tx) => {
        const view = await indexes.ensure(tx, base as BaseRow, docs)
        return indexes.lexical(view, await indexes.lexemesOf(tx, ['section']), 3, docs, 5)
      })
      t.equal(many.candidates, null)
      t.match(many.query, /^'section':\*$/)
    })

    await t.test('search finds the passage through the in-process scan', async (t) => {
      const r = await post(member.token, `/${kb}/search`, { query: 'When are rebates paid after the quarter?', k: 3 })
      t.equal(r.status, 200)
      t.equal(r.body.items.length, 3)
      t.match(r.body.items[0].text, /rebates are paid within 45 days/)
      t.ok(r.body.items[0].similarity > 0.1)
      // The in-process path served it: the base is in the process's cache, whole.
      const base = (await k.ownerSql<BaseRow>('select * from knowledge_bases where id = ?::uuid', [kb]))[0] as BaseRow
      const docs = (
        await k.ownerSql<{ id: string }>(`select id from knowledge_documents where kb_id = ?::uuid`, [kb])
      ).map((d) => d.id)
      const view = await k.kernel.ctx.db.inOrg(a.orgId, (tx) => new BaseIndexes().ensure(tx, base, docs))
      t.ok(view.complete, 'every vector of the base is of its size')
    })

    await t.test('the process cache never shows what the caller may not see', async (t) => {
      // Warm the cache with what the member sees, then change what there is.
      await post(member.token, `/${kb}/search`, { query: 'deal registration', k: 3 })
      const fresh = await add(
        'zeppelin.md',
        '# Zeppelin\n\n## Airships\n\nZeppelin airships moor at the northern mast.\n',
      )
      const secret = await add('salaries.md', '# Pay\n\n## Bands\n\nZeppelin pilots earn band seven salaries.\n', {
        roles: ['tenant_admin'],
      })
      const found = await post(member.token, `/${kb}/search`, { query: 'zeppelin airships mast', k: 5 })
      t.equal(found.body.items[0].documentId, fresh, 'a document approved after the cache was filled is found')
      t.notOk(
        found.body.items.some((p: { documentId: string }) => p.documentId === secret),
        "a passage only admins may read is not the member's",
      )
      const admin = await post(a.token, `/${kb}/search`, { query: 'zeppelin pilots salaries', k: 5 })
      t.ok(
        admin.body.items.some((p: { documentId: string }) => p.documentId === secret),
        'the admin finds it',
      )
      const retired = await post(a.token, `/${kb}/documents/${fresh}/retire`)
      t.equal(retired.status, 200)
      const after = await post(member.token, `/${kb}/search`, { query: 'zeppelin airships mast', k: 5 })
      t.notOk(
        after.body.items.some((p: { documentId: string }) => p.documentId === fresh),
        'a retired document is gone from the results at once',
      )
      const b = await createTenantWithAdmin(k, `kr-b-${kind}`)
      const other = await post(b.token, `/${kb}/search`, { query: 'zeppelin airships mast', k: 5 })
      t.equal(other.body.code, 'KB_ERR_BASE_NOT_FOUND', 'another tenant does not reach the base')
    })

    await t.test('a base whose model changed is searched with its new vectors', async (t) => {
      const changed = await k.req('PATCH', `/v1/knowledge/${kb}`, {
        token: a.token,
        body: { embeddingModel: 'local-lexical-256' },
      })
      t.equal(changed.status, 200, JSON.stringify(changed.body))
      const r = await post(member.token, `/${kb}/search`, { query: 'When are rebates paid after the quarter?', k: 3 })
      t.match(r.body.items[0].text, /rebates are paid within 45 days/)
      const [base] = await k.ownerSql<BaseRow>('select * from knowledge_bases where id = ?::uuid', [kb])
      const question = 'When are rebates paid after the quarter?'
      const [q] = embedLexical([question], 256) as number[][]
      // A cache of its own, filled from the re-embedded rows: the same passages as the route's.
      const direct = await k.kernel.ctx.db.inOrg(a.orgId, (tx) =>
        searchBase(
          tx,
          base as BaseRow,
          q as number[],
          question,
          ['tenant_member'],
          3,
          {},
          {
            hasVector,
            indexes: new BaseIndexes(),
          },
        ),
      )
      t.same(
        direct.map((p) => p.chunkId),
        r.body.items.map((p: { chunkId: string }) => p.chunkId),
      )
    })
  })
