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
const SIGN_SEED = 0x9747b28c

function addFeature(counts: Map<string, number>, feature: string, weight: number): void {
  counts.set(feature, (counts.get(feature) ?? 0) + weight)
}

function features(text: string): Map<string, number> {
  const counts = new Map<string, number>()
  const terms = contentTerms(text)
  for (let i = 0; i < terms.length; i++) {
    const term = terms[i] as string
    addFeature(counts, `w:${term}`, WEIGHT_UNIGRAM)
    if (i + 1 < terms.length) addFeature(counts, `b:${term} ${terms[i + 1]}`, WEIGHT_BIGRAM)
    const padded = `^${term}$`
    for (let j = 0; j + 3 <= padded.length; j++) addFeature(counts, `c:${padded.slice(j, j + 3)}`, WEIGHT_TRIGRAM)
  }
  return counts
}

function embedOne(text: string, dims: number): number[] {
  const vector = new Array<number>(dims).fill(0)
  for (const [feature, weight] of features(text)) {
    const hash = fnv1a(feature)
    const sign = fnv1a(feature, SIGN_SEED) & 1 ? 1 : -1
    // Sub-linear: a term said ten times is not ten times as relevant.
    vector[hash % dims] += sign * (1 + Math.log(Math.max(weight, 1))) * Math.min(weight, 1)
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
