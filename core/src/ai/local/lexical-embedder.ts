import { contentTerms, fnv1a } from './text-features.js'

/**
 * The embedded default embedding model: deterministic signed feature hashing of word unigrams,
 * word bigrams and character trigrams, sub-linear term weights, L2-normalised. It captures
 * lexical overlap only — no synonyms, no meaning — and says so: its vectors are labelled lexical.
 */
export const LEXICAL_MODEL = 'local-lexical'
export const LEXICAL_DIMS = 512

const WEIGHT_UNIGRAM = 1
const WEIGHT_BIGRAM = 0.7
const WEIGHT_TRIGRAM = 0.3
// Each kind of feature hashes from its own seed, so a word and a trigram never share a slot by design.
const SEED_UNIGRAM = 0x811c9dc5
const SEED_TRIGRAM = 0x050c5d1f

/** A 32-bit finaliser (MurmurHash3's): spreads a combined hash before it picks a slot and a sign. */
function mix(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

function add(counts: Map<number, number>, feature: number, weight: number): void {
  counts.set(feature, (counts.get(feature) ?? 0) + weight)
}

function features(text: string): Map<number, number> {
  const counts = new Map<number, number>()
  const terms = contentTerms(text)
  const hashes = terms.map((term) => fnv1a(term, SEED_UNIGRAM))
  for (let i = 0; i < terms.length; i++) {
    const term = terms[i] as string
    const h = hashes[i] as number
    add(counts, mix(h), WEIGHT_UNIGRAM)
    if (i + 1 < terms.length)
      add(counts, mix((Math.imul(h, 31) + (hashes[i + 1] as number) + 0x9e3779b9) >>> 0), WEIGHT_BIGRAM)
    // Character trigrams of the word with boundary marks (^ and $), hashed without building strings.
    const n = term.length + 2
    const code = (j: number) => (j === 0 ? 94 : j === n - 1 ? 36 : term.charCodeAt(j - 1))
    for (let j = 0; j + 3 <= n; j++) {
      let t = SEED_TRIGRAM
      t = Math.imul(t ^ code(j), 0x01000193)
      t = Math.imul(t ^ code(j + 1), 0x01000193)
      t = Math.imul(t ^ code(j + 2), 0x01000193)
      add(counts, mix(t >>> 0), WEIGHT_TRIGRAM)
    }
  }
  return counts
}

function embedOne(text: string, dims: number): number[] {
  const vector = new Array<number>(dims).fill(0)
  for (const [feature, weight] of features(text)) {
    const sign = feature & 0x80000000 ? -1 : 1
    // Sub-linear: a term said ten times is not ten times as relevant.
    vector[feature % dims] += sign * (1 + Math.log(Math.max(weight, 1))) * Math.min(weight, 1)
  }
  let norm = 0
  for (const v of vector) norm += v * v
  if (norm === 0) return vector
  const scale = 1 / Math.sqrt(norm)
  for (let i = 0; i < dims; i++) vector[i] = (vector[i] as number) * scale
  return vector
}

/** Embeds each text into a fixed-size, L2-normalised vector (all zeros for a text with no words). */
export function embedLexical(texts: string[], dims = LEXICAL_DIMS): number[][] {
  return texts.map((text) => embedOne(text, dims))
}

/** Cosine similarity of two L2-normalised vectors (their dot product). */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) sum += (a[i] as number) * (b[i] as number)
  return sum
}
