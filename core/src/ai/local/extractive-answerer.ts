import { contentTerms } from './text-features.js'

/**
 * The embedded default chat model: it writes nothing of its own. Given a question and numbered
 * passages it returns the sentences that best support an answer, verbatim, each followed by the
 * `[n]` of its passage — or escalates when no sentence covers enough of the question.
 */
export const EXTRACTIVE_MODEL = 'local-extractive'

export interface ExtractivePassage {
  /** The number the answer cites as `[n]`. */
  n: number
  id?: string
  text: string
  /** The retrieval score, used only to break ties. */
  score?: number
}

export interface ExtractiveSupport {
  n: number
  sentence: string
  /** Share of the question's (IDF-weighted) content terms the sentence contains, 0..1. */
  coverage: number
}

export interface ExtractiveAnswer {
  model: typeof EXTRACTIVE_MODEL
  /** False when nothing supports an answer: the caller should escalate to a person. */
  answered: boolean
  /** The supporting sentences verbatim with `[n]` citations, or an "I don't know" sentence. */
  text: string
  /** The distinct passage numbers cited, in order of first use. */
  citations: number[]
  support: ExtractiveSupport[]
  /** The best sentence's coverage, 0..1. */
  coverage: number
}

export interface ExtractiveOptions {
  /** Coverage the best sentence needs for an answer (default 0.5). */
  minCoverage?: number
  /** At most this many sentences in the answer (default 3). */
  maxSentences?: number
}

export const NO_ANSWER_TEXT = "I don't know: the approved sources do not answer this question."

/** Splits prose into sentences; list items and headings count as sentences of their own. */
export function splitSentences(text: string): string[] {
  const out: string[] = []
  for (const line of text.split(/\n+/)) {
    const trimmed = line.trim()
    if (trimmed === '') continue
    for (const part of trimmed.split(/(?<=[.!?])\s+(?=[\p{Lu}\p{N}"“(])/u)) {
      const sentence = part.trim()
      if (sentence !== '') out.push(sentence)
    }
  }
  return out
}

const NUMBER =
  '(?:\\d+(?:[.,]\\d+)?|one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|thirty|sixty|ninety)'
const ANSWER_KINDS: Array<[RegExp, RegExp]> = [
  [
    /^\s*(when|how (long|soon|fast|quickly|often)|how many (days|weeks|months|years|hours))\b/i,
    new RegExp(
      `\\b${NUMBER}\\s+(business\\s+)?(days?|weeks?|months?|years?|hours?)\\b|\\b(quarterly|monthly|yearly|annually|daily|weekly)\\b`,
      'i',
    ),
  ],
  [
    /^\s*(how (much|many)|what (share|percentage|discount|rebate|fee|price))\b/i,
    new RegExp(`\\b${NUMBER}\\s*(%|percent|euros?|eur)\\b`, 'i'),
  ],
]

interface Candidate {
  n: number
  sentence: string
  terms: Set<string>
  order: number
  passageScore: number
}

export function answerExtractively(
  question: string,
  passages: ExtractivePassage[],
  options: ExtractiveOptions = {},
): ExtractiveAnswer {
  const minCoverage = options.minCoverage ?? 0.5
  const maxSentences = options.maxSentences ?? 3
  const asked = [...new Set(contentTerms(question))]
  const candidates: Candidate[] = []
  for (const passage of passages) {
    for (const sentence of splitSentences(passage.text)) {
      candidates.push({
        n: passage.n,
        sentence,
        terms: new Set(contentTerms(sentence)),
        order: candidates.length,
        passageScore: passage.score ?? 0,
      })
    }
  }
  if (asked.length === 0 || candidates.length === 0) return noAnswer()

  // Terms rare among the passages say more about which sentence answers than common ones.
  const idf = new Map<string, number>()
  for (const term of asked) {
    const df = candidates.reduce((count, c) => count + (hasTerm(c.terms, term) ? 1 : 0), 0)
    idf.set(term, Math.log(1 + (candidates.length + 1) / (df + 1)))
  }
  const total = asked.reduce((sum, term) => sum + (idf.get(term) as number), 0)
  const coverageOf = (terms: Set<string>, exclude: Set<string> = new Set()) =>
    asked.reduce((sum, term) => sum + (!exclude.has(term) && hasTerm(terms, term) ? (idf.get(term) as number) : 0), 0) /
    total

  // Among sentences that cover the question as well, one of the kind asked for (a time for "when",
  // an amount for "how much", …) goes first.
  const kind = ANSWER_KINDS.find(([asks]) => asks.test(question))?.[1]
  const fits = (sentence: string) => (kind?.test(sentence) ? 0.1 : 0)
  // A sentence that opens with what the question is about is usually the one that states it.
  const opensWith = (sentence: string) =>
    contentTerms(sentence.split(/\s+/).slice(0, 3).join(' ')).some((t) => asked.includes(t)) ? 0.05 : 0
  const ranked = candidates
    .map((c) => {
      const coverage = coverageOf(c.terms)
      return { c, coverage, rank: coverage + fits(c.sentence) + opensWith(c.sentence) }
    })
    .sort((a, b) => b.rank - a.rank || b.c.passageScore - a.c.passageScore || a.c.order - b.c.order)
  const best = ranked[0]
  if (best === undefined || best.coverage < minCoverage) return noAnswer(best?.coverage ?? 0)

  // The best sentence, then sentences that add question terms it lacks or support it nearly as well.
  const chosen = [best]
  const covered = new Set(asked.filter((term) => hasTerm(best.c.terms, term)))
  for (const next of ranked.slice(1)) {
    if (chosen.length >= maxSentences) break
    // Only a sentence that supplies question terms the chosen ones lack earns its place.
    if (next.coverage < minCoverage / 2 || coverageOf(next.c.terms, covered) < 0.15) continue
    chosen.push(next)
    for (const term of asked) if (hasTerm(next.c.terms, term)) covered.add(term)
  }
  chosen.sort((a, b) => a.c.order - b.c.order)
  const citations: number[] = []
  for (const { c } of chosen) if (!citations.includes(c.n)) citations.push(c.n)
  return {
    model: EXTRACTIVE_MODEL,
    answered: true,
    text: chosen.map(({ c }) => `${c.sentence} [${c.n}]`).join(' '),
    citations,
    support: chosen.map(({ c, coverage }) => ({ n: c.n, sentence: c.sentence, coverage })),
    coverage: best.coverage,
  }
}

/**
 * Whether a sentence holds a question term, or a word of the same family: "registered" and
 * "registration" stem differently but share all but their endings.
 */
function hasTerm(terms: Set<string>, term: string): boolean {
  if (terms.has(term)) return true
  if (term.length < 5) return false
  for (const t of terms) {
    if (t.length < 5) continue
    const shorter = Math.min(t.length, term.length)
    let common = 0
    while (common < shorter && t.charCodeAt(common) === term.charCodeAt(common)) common++
    if (common >= 5 && common >= shorter - 1) return true
  }
  return false
}

function noAnswer(coverage = 0): ExtractiveAnswer {
  return { model: EXTRACTIVE_MODEL, answered: false, text: NO_ANSWER_TEXT, citations: [], support: [], coverage }
}

/** The shape the `local` provider consumes: the answer, its citations, and whether to escalate. */
export function answerExtractive(
  question: string,
  passages: ExtractivePassage[],
  options?: ExtractiveOptions,
): ExtractiveAnswer & { escalate: boolean } {
  const answer = answerExtractively(question, passages, options)
  return { ...answer, escalate: !answer.answered }
}
