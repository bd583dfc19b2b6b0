import { sqlArray, type Tx } from '../db/database.js'
import { LexemeIndex } from './lexeme-index.js'

/** The chunks of one document as a base's index holds them (chunks are immutable once written). */
interface DocumentEntry {
  keys: string[]
  /** The chunks' vectors, one after the other (`keys.length × dims`). */
  vectors: Float32Array
}

/** One base under one embedding model: its documents' chunks, loaded as queries first need them. */
class BaseEntry {
  readonly docs = new Map<string, DocumentEntry>()
  /** Which loaded chunks hold each full-text lexeme; a chunk is its ordinal in `chunkDoc` and `chunkKey`. */
  readonly lexemes = new LexemeIndex()
  readonly chunkDoc: string[] = []
  readonly chunkKey: string[] = []
  floats = 0

  constructor(readonly dims: number) {}

  /** Adds a document's chunks, with each chunk's lexemes (its `tsv`'s). */
  add(id: string, entry: DocumentEntry, lexemes: readonly (readonly string[])[]): void {
    if (this.docs.has(id)) return
    this.docs.set(id, entry)
    for (const [i, key] of entry.keys.entries()) {
      const ordinal = this.chunkDoc.length
      this.chunkDoc.push(id)
      this.chunkKey.push(key)
      this.lexemes.add(ordinal, lexemes[i] ?? [])
    }
    // Vector components, plus an estimate of a chunk's keys and lexeme postings in the same units.
    this.floats += entry.vectors.length + entry.keys.length * 64
  }
}

/**
 * A prefix OR of lexemes as tsquery text (`'lexeme':* | 'other':*`), each quoted: `?::tsquery`
 * takes lexemes as they are written, without normalising them again.
 */
export function prefixQuery(lexemes: readonly string[]): string {
  return lexemes.map((l) => `'${l.replace(/\\/g, '\\\\').replace(/'/g, "''")}':*`).join(' | ')
}

/** What the full-text side asks SQL: a prefix OR of lexemes, and the chunks it can match (ADR 0100). */
export interface LexicalPlan {
  /** A tsquery (`'lexeme':* | 'other':*`), or '' when no loaded chunk of the base holds any of the question's terms. */
  query: string
  /** The visible chunks the query can match; null when there are more than the plan's limit (SQL tests every chunk of the listed documents then). */
  candidates: Array<{ documentId: string; chunkKey: string }> | null
}

/**
 * Reads a `real[]` in PostgreSQL's binary array format (`array_send`: dimensions, flags, element
 * type, each dimension's size and lower bound, then each element's length and big-endian
 * float4) into `out` at `at` — exact, and much cheaper than parsing the text form's decimals.
 * False when it is not a one-dimensional array of `dims` non-null values.
 */
export function readFloat4Array(bytes: Uint8Array, dims: number, out: Float32Array, at: number): boolean {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (bytes.byteLength < 20 || v.getInt32(0) !== 1 || v.getInt32(12) !== dims) return false
  if (bytes.byteLength !== 20 + dims * 8) return false
  for (let i = 0, o = 20; i < dims; i++, o += 8) {
    if (v.getInt32(o) !== 4) return false
    out[at + i] = v.getFloat32(o + 4)
  }
  return true
}

/** Whether `a` ranks below `b`: a lower score, or the same score and a later chunk key. */
function worse(a: ScoredChunk, b: ScoredChunk): boolean {
  return a.score < b.score || (a.score === b.score && a.chunkKey > b.chunkKey)
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
 * What retrieval keeps in process per knowledge base (ADR 0086, ADR 0100): the chunks' vectors
 * (the exact scan runs here, over `Float32Array`s — on PostgreSQL without pgvector instead of
 * `real[]` arithmetic in SQL, and on the embedded database faster than pgvector in WebAssembly),
 * and which chunks hold each full-text lexeme (so the full-text side asks only for a question's
 * rarest terms, and names to SQL the chunks they can match). It is a cache of immutable rows: a
 * document's chunks never change once written (a new version is a new document; a re-embed is
 * a new model, hence a new entry), so an entry only grows — with the documents a query's own
 * transaction sees as visible and the entry lacks — and is never stale. Nothing is returned
 * from it that the caller's transaction did not list: which documents are searched, and every
 * passage's text, come from SQL under row-level security in that transaction. One instance
 * serves a whole process (the kernel's `KnowledgeService`).
 */
export class BaseIndexes {
  private readonly entries = new Map<string, BaseEntry>()
  private readonly maxFloats: number
  /** A question term's lexemes under PostgreSQL's `english` configuration (none for its stop words). */
  private readonly termLexemes = new Map<string, string[]>()

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
        e?: Uint8Array | null
        lx?: string[]
      }>(
        `select d.id as document_id, c.chunk_key, array_send(c.embedding) as e, tsvector_to_array(c.tsv) as lx
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
        const vectors = new Float32Array(list.length * e.dims)
        if (!list.every((r, i) => r.e && readFloat4Array(r.e, e.dims, vectors, i * e.dims))) {
          complete = false
          continue
        }
        e.add(
          id,
          { keys: list.map((r) => r.chunk_key as string), vectors },
          list.map((r) => r.lx ?? []),
        )
      }
      this.trim(e)
    }
    // Without rows (the base changed model meanwhile) a document is left out, to be read next time.
    return { entry: e, complete }
  }

  /**
   * The exact top `depth` of the listed documents' chunks by inner product with `query` (ties by
   * chunk key). Only the query's non-zero components are multiplied: a question's lexical vector
   * has a few dozen of 512 (its words, bigrams and trigrams), and leaving out terms that are zero
   * does not change a sum, so the scores are the dense product's, bit for bit.
   */
  scan(view: BaseEntryView, documentIds: readonly string[], query: readonly number[], depth: number): ScoredChunk[] {
    const { entry } = view
    const dims = entry.dims
    const q = Float32Array.from(query)
    const nz: number[] = []
    for (let j = 0; j < dims; j++) if (q[j] !== 0) nz.push(j)
    const at = Int32Array.from(nz)
    const qs = Float32Array.from(nz, (j) => q[j] as number)
    const n = at.length
    // The top list, worst last; a chunk enters only when it beats the worst (or the list is short).
    const top: ScoredChunk[] = []
    let floor = Number.NEGATIVE_INFINITY
    let floorKey = ''
    for (const id of documentIds) {
      const doc = entry.docs.get(id)
      if (!doc || doc.vectors.length === 0) continue
      const v = doc.vectors
      const keys = doc.keys
      for (let c = 0, o = 0; c < keys.length; c++, o += dims) {
        let s = 0
        for (let i = 0; i < n; i++) s += (v[o + (at[i] as number)] as number) * (qs[i] as number)
        const key = keys[c] as string
        if (top.length === depth && (s < floor || (s === floor && key >= floorKey))) continue
        const candidate = { documentId: id, chunkKey: key, score: s }
        // Insertion into the sorted top list (depth is small).
        let k = top.length
        while (k > 0 && worse(top[k - 1] as ScoredChunk, candidate)) k--
        top.splice(k, 0, candidate)
        if (top.length > depth) top.pop()
        if (top.length === depth) {
          const last = top[depth - 1] as ScoredChunk
          floor = last.score
          floorKey = last.chunkKey
        }
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
   * Each term's lexemes as PostgreSQL's `english` configuration makes them (`to_tsvector`, the
   * same as the chunks' stored `tsv`), asked of the database once per term and process.
   */
  async lexemesOf(tx: Tx, terms: readonly string[]): Promise<string[][]> {
    const missing = [...new Set(terms.filter((t) => !this.termLexemes.has(t)))]
    if (missing.length) {
      const rows = await tx.sql<{ t: string; l: string[] }>(
        `select t, tsvector_to_array(to_tsvector('english', t)) as l from unnest(?::text[]) as t`,
        [sqlArray(missing)],
      )
      if (this.termLexemes.size + rows.length > 100_000) this.termLexemes.clear()
      for (const r of rows) this.termLexemes.set(r.t, r.l ?? [])
    }
    return terms.map((t) => this.termLexemes.get(t) ?? [])
  }

  /**
   * The full-text side's plan: the `max` rarest of the question's terms (each its lexemes, from
   * {@link lexemesOf}) among the base's loaded chunks, as a prefix OR, and the visible chunks
   * (of `documentIds`) that query can match — at most `limit` of them, else null.
   */
  lexical(
    view: BaseEntryView,
    terms: readonly (readonly string[])[],
    max: number,
    documentIds: readonly string[],
    limit: number,
  ): LexicalPlan {
    const { entry } = view
    const counted = terms
      .filter((l) => l.length > 0)
      .map((l) => ({ lexemes: l, n: entry.lexemes.count(l) }))
      .filter((x) => x.n > 0)
      .sort((a, b) => a.n - b.n || (a.lexemes[0] as string).localeCompare(b.lexemes[0] as string))
    const chosen = [...new Set(counted.slice(0, max).flatMap((x) => x.lexemes))]
    if (chosen.length === 0) return { query: '', candidates: [] }
    const query = prefixQuery(chosen)
    const visible = new Set(documentIds)
    const candidates: Array<{ documentId: string; chunkKey: string }> = []
    for (const o of entry.lexemes.matches(chosen)) {
      const documentId = entry.chunkDoc[o] as string
      if (!visible.has(documentId)) continue
      if (candidates.length === limit) return { query, candidates: null }
      candidates.push({ documentId, chunkKey: entry.chunkKey[o] as string })
    }
    return { query, candidates }
  }
}

/** An entry as a query holds it; `complete` is false when a document's vectors were not the base's size (left out). */
export interface BaseEntryView {
  entry: BaseEntry
  complete: boolean
}
