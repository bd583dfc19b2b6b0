import { createHash } from 'node:crypto'
import { splitSentences } from '../ai/local/extractive-answerer.js'
import type { Section } from './parse.js'

export interface Chunk {
  /** Stable: the same text under the same heading of the same source keeps its key across re-ingestion. */
  key: string
  ordinal: number
  heading: string
  text: string
}

export interface ChunkOptions {
  /** Characters a chunk aims for (default 700); a paragraph never straddles two chunks unless it alone is longer. */
  target?: number
  /** Characters of the previous chunk's end repeated at the start of the next in the same section (default 160, whole sentences). */
  overlap?: number
}

/** Chunks sections on their structure: paragraphs packed up to the target, long ones split on sentences. */
export function chunkSections(source: string, sections: Section[], options: ChunkOptions = {}): Chunk[] {
  const target = options.target ?? 700
  const overlap = options.overlap ?? 160
  const chunks: Chunk[] = []
  const seen = new Map<string, number>()
  const emit = (heading: string, text: string) => {
    const base = createHash('sha256').update(`${source}\n${heading}\n${text}`).digest('base64url').slice(0, 22)
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    chunks.push({ key: n === 0 ? base : `${base}.${n}`, ordinal: chunks.length, heading, text })
  }
  for (const section of sections) {
    const units: string[] = []
    for (const paragraph of section.paragraphs) {
      if (paragraph.length <= target) units.push(paragraph)
      else units.push(...packSentences(splitSentences(paragraph), target))
    }
    let current: string[] = []
    let length = 0
    let carried = ''
    const flush = () => {
      if (current.length === 0) return
      const body = current.join('\n\n')
      emit(section.heading, carried ? `${carried}\n\n${body}` : body)
      carried = tailSentences(body, overlap)
      current = []
      length = 0
    }
    for (const unit of units) {
      if (length > 0 && length + unit.length > target) flush()
      current.push(unit)
      length += unit.length
    }
    flush()
  }
  return chunks
}

function packSentences(sentences: string[], target: number): string[] {
  const out: string[] = []
  let current = ''
  for (const sentence of sentences) {
    if (current && current.length + sentence.length + 1 > target) {
      out.push(current)
      current = ''
    }
    // A single sentence longer than the target is cut on words.
    if (sentence.length > target * 2) {
      for (let i = 0; i < sentence.length; i += target) out.push(sentence.slice(i, i + target))
      continue
    }
    current = current ? `${current} ${sentence}` : sentence
  }
  if (current) out.push(current)
  return out
}

/** The last whole sentences of `text` that fit in `max` characters ('' if not even one does). */
function tailSentences(text: string, max: number): string {
  if (max <= 0) return ''
  const sentences = splitSentences(text)
  let tail = ''
  for (let i = sentences.length - 1; i >= 0; i--) {
    const next = tail ? `${sentences[i]} ${tail}` : (sentences[i] as string)
    if (next.length > max) break
    tail = next
  }
  return tail
}
