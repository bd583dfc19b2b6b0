// The knowledge bench's generated corpus: Markdown documents and questions about their sections,
// from a realistic vocabulary, deterministic (seeded).
// - Vocabulary: ~6,000 distinct words — every word of the vendored Northwind CSVs
//   (plugins/northwind/data: product, company, city, person and category names, ~1,400 words),
//   a few dozen partner-programme terms, and deterministic generated word forms (syllables plus
//   English suffixes) — ranked so that English function words and programme terms are the most
//   frequent, and drawn with a Zipf law (frequency ∝ 1/rank), as in real text.
// - Each section has its own topic: 6 distinctive terms (drawn from the less frequent ranks), which
//   make its heading and ~15 % of its words; the rest is Zipf text.
// - A question asks about one section (of a document the caller's roles may read): a common word
//   and 3 of the section's topic terms.
// An earlier corpus used 80 words uniformly, so every chunk matched every question's terms and the
// full-text side ranked the whole base — which no real knowledge base does.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const DATA = join(import.meta.dirname, '..', 'plugins', 'northwind', 'data')
const SIZE = 6_000
const TOPIC_FROM = 400

const FUNCTION_WORDS =
  'the of and to a in for is on with by as be at or from that this are it an which not all will may must their any each'.split(
    ' ',
  )
const PROGRAMME_WORDS = (
  'partner rebate discount tier gold silver registered deal registration protection period quarter revenue ' +
  'subscription licence onboarding training exam certificate insurance market development funds claim invoice ' +
  'support incident severity escalation critical response migration customer reference brand compliance audit ' +
  'termination notice pricing request approval director warehouse carrier freight returns product order'
).split(' ')

/** A seeded generator of numbers in [0, 1) (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function northwindWords(): string[] {
  const words = new Set<string>()
  for (const file of readdirSync(DATA)
    .filter((f) => f.endsWith('.csv'))
    .sort())
    for (const w of readFileSync(join(DATA, file), 'utf8')
      .toLowerCase()
      .match(/[a-z]{3,}/g) ?? [])
      words.add(w)
  return [...words].sort()
}

function generatedWords(count: number, taken: Set<string>): string[] {
  const onsets = ['b', 'c', 'd', 'f', 'g', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'br', 'cl', 'pr', 'st', 'tr', 'gr']
  const vowels = ['a', 'e', 'i', 'o', 'u', 'ai', 'ea', 'ou']
  const codas = ['', 'n', 'r', 'l', 's', 'nt', 'rd', 'st', 'ck']
  const suffixes = ['', '', 'ing', 'ed', 'ion', 'ment', 'able', 'er', 'ly', 'ity']
  const next = rng(20261206)
  const pick = <T>(xs: T[]) => xs[Math.floor(next() * xs.length)] as T
  const out: string[] = []
  while (out.length < count) {
    let w = ''
    for (let s = 1 + Math.floor(next() * 2); s > 0; s--) w += pick(onsets) + pick(vowels) + pick(codas)
    w += pick(suffixes)
    if (w.length >= 4 && !taken.has(w)) {
      taken.add(w)
      out.push(w)
    }
  }
  return out
}

function shuffle<T>(xs: T[], seed: number): T[] {
  const next = rng(seed)
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1))
    ;[xs[i], xs[j]] = [xs[j] as T, xs[i] as T]
  }
  return xs
}

/** The vocabulary by rank (most frequent first) and a Zipf sampler over it. */
export function corpus() {
  const taken = new Set([...FUNCTION_WORDS, ...PROGRAMME_WORDS])
  const northwind = northwindWords().filter((w) => !taken.has(w))
  for (const w of northwind) taken.add(w)
  const rest = shuffle([...northwind, ...generatedWords(SIZE - taken.size, taken)], 7)
  const vocabulary = [...FUNCTION_WORDS, ...PROGRAMME_WORDS, ...rest]
  const cumulative: number[] = []
  let sum = 0
  for (let r = 0; r < vocabulary.length; r++) cumulative.push((sum += 1 / (r + 1)))
  const zipf = (next: () => number): string => {
    const x = next() * sum
    let lo = 0
    let hi = cumulative.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((cumulative[mid] as number) < x) lo = mid + 1
      else hi = mid
    }
    return vocabulary[lo] as string
  }
  /** A section's 6 topic terms, from the less frequent ranks. */
  const topic = (seed: number): string[] => {
    const next = rng(seed * 7919 + 1)
    const terms = new Set<string>()
    while (terms.size < 6)
      terms.add(vocabulary[TOPIC_FROM + Math.floor(next() * (vocabulary.length - TOPIC_FROM))] as string)
    return [...terms]
  }
  const section = (seed: number): string => {
    const terms = topic(seed)
    const next = rng(seed)
    const words: string[] = []
    for (let i = 0; i < 100; i++)
      words.push(next() < 0.15 ? (terms[Math.floor(next() * terms.length)] as string) : zipf(next))
    const heading = terms.slice(0, 3).map((t) => t[0]?.toUpperCase() + t.slice(1))
    return `## ${heading.join(' ')}\n\n${words.join(' ')}.`
  }
  /** A Markdown document of `sections` sections, each one ~700-character chunk. */
  const document = (seed: number, sections: number): string => {
    const title = topic(seed).slice(0, 2).join(' ')
    let out = `# ${title}\n\n`
    for (let s = 0; s < sections; s++) out += `${section(seed * 1000 + s)}\n\n`
    return out
  }
  /** A question about a section of one of the documents `docSeed(d)` for d < docs, s < sections. */
  const question = (i: number, docs: number, sections: number, docSeed: (d: number) => number): string => {
    const next = rng(i * 104729 + 3)
    const d = Math.floor(next() * docs)
    const s = Math.floor(next() * sections)
    const terms = topic(docSeed(d) * 1000 + s)
    const common = vocabulary[FUNCTION_WORDS.length + Math.floor(next() * PROGRAMME_WORDS.length)] as string
    return `what does the ${common} guide say about ${terms[0]} ${terms[3]} and ${terms[4]}?`
  }
  return { vocabulary, document, question }
}
