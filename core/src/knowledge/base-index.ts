import type { Tx } from '../db/database.js'
import { contentTerms } from '../ai/local/text-features.js'

/** The chunks of one document as a base's index holds them (chunks are immutable once written). */
interface DocumentEntry {
  keys: string[]
  /** The chunks' vectors, one after the other (`keys.length × dims`). */
  vectors: Float32Array
  /** Distinct content terms of each chunk, for the terms' chunk frequencies. */
  terms: string[][]
}

/** One base under one embedding model: its documents' chunks, loaded as queries first need them. */
class BaseEntry {
  readonly docs = new Map<string, DocumentEntry>()
  /** In how many loaded chunks each content term occurs. */
  readonly frequency = new Map<string, number>()
  floats = 0

  constructor(readonly dims: number) {}

  add(id: string, entry: DocumentEntry): void {
    if (this.docs.has(id)) return
    this.docs.set(id, entry)
    this.floats += entry.vectors.length + entry.keys.length * 8
    for (const terms of entry.terms) for (const t of terms) this.frequency.set(t, (this.frequency.get(t) ?? 0) + 1)
  }
}

/** A scored chunk of the in-process scan. */
export interface ScoredChunk {
  documentId: string
  chunkKey: string
  score: number
}

export interface BaseIndexOptions {
  /** Values (vector components, plus a few per chunk) kept across all bases before the least recently used base is dropped. */
  maxFloats?: number
}

/**
 * What retrieval keeps in process per knowledge base (ADR 0086): the chunks' vectors (the exact
 * scan runs here, over `Float32Array`s — on PostgreSQL without pgvector instead of `real[]`
 * arithmetic in SQL, and on the embedded database faster than pgvector in WebAssembly), and how
 * many chunks each content term occurs in (so the full-text side asks only for a question's
 * rarest terms). It is a cache of immutable rows: a
 * document's chunks never change once written (a new version is a new document; a re-embed is
 * a new model, hence a new entry), so an entry only grows — with the documents a query's own
 * transaction sees as visible and the entry lacks — and is never stale. Nothing is returned
 * from it that the caller's transaction did not list: which documents are searched, and every
 * passage's text, come from SQL under row-level security in that transaction.
 */
export class BaseIndexes {
  private readonly entries = new Map<string, BaseEntry>()
  private readonly maxFloats: number

  constructor(options: BaseIndexOptions = {}) {
    this.maxFloats = options.maxFloats ?? 32 * 1024 * 1024
  }

  private entry(baseId: string, model: string, dims: number): BaseEntry {
    const key = `${baseId}/${model}`
    let e = this.entries.get(key)
    if (e && e.dims !== dims) e = undefined
    if (!e) e = new BaseEntry(dims)
    // Most recently used last.
    this.entries.delete(key)
    this.entries.set(key, e)
    return e
  }

  private trim(keep: BaseEntry): void {
    let total = 0
    for (const e of this.entries.values()) total += e.floats
    for (const [key, e] of this.entries) {
      if (total <= this.maxFloats) break
      if (e === keep) continue
      total -= e.floats
      this.entries.delete(key)
    }
  }

  /**
   * Makes sure the entry of `base` holds `documentIds`, reading the missing ones in `tx` — only
   * while the base still uses `model` (a re-embed commits the new vectors with the new model).
   */
  async ensure(
    tx: Tx,
    base: { id: string; embedding_model: string; embedding_dims: number },
    documentIds: readonly string[],
  ): Promise<BaseEntryView> {
    const e = this.entry(base.id, base.embedding_model, base.embedding_dims)
    const missing = documentIds.filter((id) => !e.docs.has(id))
    let complete = true
    if (missing.length) {
      // One row per chunk, and one (null chunk) per listed document without chunks — none at all
      // when the base no longer has this model.
      const rows = await tx.sql<{
        document_id: string
        chunk_key: string | null
        heading: string
        text: string
        e?: number[]
      }>(
        `select d.id as document_id, c.chunk_key, c.heading, c.text, c.embedding as e
           from unnest(?::uuid[]) as d(id)
           join knowledge_bases b on b.id = ?::uuid and b.embedding_model = ?
           left join knowledge_chunks c on c.document_id = d.id and c.kb_id = b.id
          order by d.id, c.chunk_key`,
        [`{${missing.join(',')}}`, base.id, base.embedding_model],
      )
      const byDoc = new Map<string, typeof rows>()
      for (const r of rows) {
        const list = byDoc.get(r.document_id) ?? []
        byDoc.set(r.document_id, list)
        if (r.chunk_key !== null) list.push(r)
      }
      for (const [id, list] of byDoc) {
        if (list.some((r) => r.e?.length !== e.dims)) {
          complete = false
          continue
        }
        const vectors = new Float32Array(list.length * e.dims)
        for (const [i, r] of list.entries()) vectors.set(r.e as number[], i * e.dims)
        e.add(id, {
          keys: list.map((r) => r.chunk_key as string),
          vectors,
          terms: list.map((r) => [...new Set(contentTerms(`${r.heading} ${r.text}`))]),
        })
      }
      this.trim(e)
    }
    // Without rows (the base changed model meanwhile) a document is left out, to be read next time.
    return { entry: e, complete }
  }

  /** The exact top `depth` of the listed documents' chunks by inner product with `query` (ties by chunk key). */
  scan(view: BaseEntryView, documentIds: readonly string[], query: readonly number[], depth: number): ScoredChunk[] {
    const { entry } = view
    const dims = entry.dims
    const q = Float32Array.from(query)
    const top: ScoredChunk[] = []
    const worse = (a: ScoredChunk, b: ScoredChunk) =>
      a.score < b.score || (a.score === b.score && a.chunkKey > b.chunkKey)
    for (const id of documentIds) {
      const doc = entry.docs.get(id)
      if (!doc || doc.vectors.length === 0) continue
      const v = doc.vectors
      for (let c = 0; c < doc.keys.length; c++) {
        let s = 0
        const o = c * dims
        for (let j = 0; j < dims; j++) s += (v[o + j] as number) * (q[j] as number)
        const candidate = { documentId: id, chunkKey: doc.keys[c] as string, score: s }
        if (top.length === depth && !worse(top[top.length - 1] as ScoredChunk, candidate)) continue
        // Insertion into the sorted top list (depth is small).
        let at = top.length
        while (at > 0 && worse(top[at - 1] as ScoredChunk, candidate)) at--
        top.splice(at, 0, candidate)
        if (top.length > depth) top.pop()
      }
    }
    return top
  }

  /** The inner product of one loaded chunk with `query` (null when the entry lacks it). */
  similarity(view: BaseEntryView, documentId: string, chunkKey: string, query: readonly number[]): number | null {
    const doc = view.entry.docs.get(documentId)
    const c = doc ? doc.keys.indexOf(chunkKey) : -1
    if (!doc || c < 0 || doc.vectors.length === 0) return null
    const dims = view.entry.dims
    let s = 0
    for (let j = 0; j < dims; j++) s += (doc.vectors[c * dims + j] as number) * Math.fround(query[j] as number)
    return s
  }

  /**
   * The question's `max` rarest terms among the base's loaded chunks (terms no chunk holds
   * are left out: they match nothing); all of them when the base holds none yet.
   */
  rarest(view: BaseEntryView, terms: readonly string[], max: number): string[] {
    const f = view.entry.frequency
    const known = [...new Set(terms)].filter((t) => (f.get(t) ?? 0) > 0)
    if (known.length === 0) return [...terms]
    return known.sort((a, b) => (f.get(a) as number) - (f.get(b) as number) || (a < b ? -1 : 1)).slice(0, max)
  }
}

/** An entry as a query holds it; `complete` is false when a document's vectors were not the base's size (left out). */
export interface BaseEntryView {
  entry: BaseEntry
  complete: boolean
}
