import { parseCsvRecords } from '@trellis/plugin-sdk'
import { parse as parseHtml, type HTMLElement, type Node as HtmlNode } from 'node-html-parser'
import { KB } from './errors.js'

export const DOCUMENT_FORMATS = ['text', 'markdown', 'html', 'pdf', 'csv'] as const
export type DocumentFormat = (typeof DOCUMENT_FORMATS)[number]

/** A document's structure: sections under headings, each a list of paragraphs. */
export interface Section {
  /** The heading path, e.g. `Deal registration › Protection period` ('' before the first heading). */
  heading: string
  paragraphs: string[]
}

export const LIMITS = {
  /** Bytes of the document as uploaded (a PDF's bytes, or the text). */
  bytes: 8 * 1024 * 1024,
  /** Characters of text a document may yield (a small PDF that inflates to more is refused). */
  chars: 2_000_000,
  pdfPages: 500,
  pdfMs: 10_000,
  csvRows: 20_000,
}

/** Reads a document into sections; hostile input ends in a typed error, never a partial document. */
export async function parseDocument(format: DocumentFormat, content: string): Promise<Section[]> {
  if (format === 'pdf') return markdownSections(await pdfText(content))
  if (Buffer.byteLength(content, 'utf8') > LIMITS.bytes) throw KB.DOCUMENT_TOO_LARGE({ limit: `${LIMITS.bytes} bytes` })
  refuseBinary(format, content)
  const sections =
    format === 'markdown'
      ? markdownSections(content)
      : format === 'html'
        ? markdownSections(htmlToMarkdown(content))
        : format === 'csv'
          ? csvSections(content)
          : markdownSections(content, false)
  if (!sections.some((s) => s.paragraphs.length > 0)) throw KB.DOCUMENT_EMPTY({ format })
  return sections
}

function refuseBinary(format: string, content: string): void {
  // NULs and other C0 controls (but tabs and line ends) do not occur in text.
  let controls = 0
  for (let i = 0; i < content.length; i++) {
    const c = content.charCodeAt(i)
    if (c === 0) throw KB.DOCUMENT_UNREADABLE({ format, reason: 'it is binary, not text' })
    if ((c < 32 && c !== 9 && c !== 10 && c !== 13) || c === 0xfffd) controls++
  }
  if (controls > content.length / 100 + 8) throw KB.DOCUMENT_UNREADABLE({ format, reason: 'it is binary, not text' })
}

const HEADING = /^(#{1,6})\s+(.+?)\s*#*\s*$/

/** Markdown (or plain text) into sections; plain text has no headings, only paragraphs. */
export function markdownSections(text: string, headings = true): Section[] {
  const sections: Section[] = [{ heading: '', paragraphs: [] }]
  const path: string[] = []
  let paragraph: string[] = []
  let fenced = false
  const flush = () => {
    const joined = paragraph.join(' ').replace(/\s+/g, ' ').trim()
    if (joined !== '') (sections[sections.length - 1] as Section).paragraphs.push(joined)
    paragraph = []
  }
  for (const raw of text.replace(/\r\n?/g, '\n').split('\n')) {
    const line = raw.trimEnd()
    if (headings && /^(```|~~~)/.test(line.trim())) {
      fenced = !fenced
      flush()
      continue
    }
    const heading = headings && !fenced ? HEADING.exec(line) : null
    if (heading) {
      flush()
      const level = (heading[1] as string).length
      path.length = Math.min(path.length, level - 1)
      path[level - 1] = inline(heading[2] as string)
      sections.push({ heading: path.filter(Boolean).join(' › '), paragraphs: [] })
    } else if (line.trim() === '') flush()
    else if (headings && /^\s*([-*+]|\d+[.)])\s+/.test(line)) {
      // A list item is a paragraph of its own: it usually states one rule.
      flush()
      paragraph.push(inline(line.replace(/^\s*([-*+]|\d+[.)])\s+/, '')))
      flush()
    } else paragraph.push(headings ? inline(line) : line)
  }
  flush()
  return sections.filter((s) => s.paragraphs.length > 0)
}

/** Markdown inline syntax to its text: links to their label, emphasis and code marks dropped. */
function inline(text: string): string {
  return text
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]+)\]\([^)]*\)/g, '$1')
    .replace(/(\*\*|__|\*|_|`)(\S(?:.*?\S)?)\1/g, '$2')
    .replace(/^>\s?/, '')
    .trim()
}

const BLOCKS = new Set(['p', 'div', 'section', 'article', 'li', 'tr', 'br', 'table', 'ul', 'ol', 'blockquote', 'pre'])
const SKIPPED = new Set(['script', 'style', 'noscript', 'template', 'head', 'svg', 'iframe', 'object'])

/** HTML to Markdown-shaped text: headings become `#` lines, blocks become paragraphs; scripts go. */
export function htmlToMarkdown(html: string): string {
  const root = parseHtml(html, { comment: false, blockTextElements: { pre: true } })
  const out: string[] = []
  const walk = (node: HtmlNode) => {
    if (node.nodeType === 3) {
      out.push(node.text)
      return
    }
    const el = node as HTMLElement
    const tag = (el.rawTagName ?? '').toLowerCase()
    if (SKIPPED.has(tag)) return
    const level = /^h([1-6])$/.exec(tag)
    if (level) {
      out.push(`\n\n${'#'.repeat(Number(level[1]))} ${el.text.replace(/\s+/g, ' ').trim()}\n\n`)
      return
    }
    if (BLOCKS.has(tag)) out.push('\n\n')
    for (const child of el.childNodes) walk(child)
    if (tag === 'td' || tag === 'th') out.push(' ')
    if (BLOCKS.has(tag)) out.push('\n\n')
  }
  walk(root)
  return out.join('').replace(/[ \t]+/g, ' ')
}

/** Each CSV row becomes a paragraph `column: value; …`, so a row is retrieved with its headers. */
function csvSections(content: string): Section[] {
  let rows: Record<string, string>[]
  try {
    rows = parseCsvRecords(content, { trim: true, maxRows: LIMITS.csvRows + 2 })
  } catch (err) {
    throw KB.DOCUMENT_UNREADABLE({ format: 'csv', reason: (err as Error).message.slice(0, 200) })
  }
  if (rows.length > LIMITS.csvRows) throw KB.DOCUMENT_TOO_LARGE({ limit: `${LIMITS.csvRows} rows` })
  const paragraphs = rows
    .map((row) =>
      Object.entries(row)
        .filter(([, v]) => v !== undefined && String(v).trim() !== '')
        .map(([k, v]) => `${k}: ${v}`)
        .join('; '),
    )
    .filter((p) => p !== '')
  return paragraphs.length ? [{ heading: '', paragraphs: paragraphs.map((p) => (p.endsWith('.') ? p : `${p}.`)) }] : []
}

/** The text layer of a PDF given as base64, page by page; broken or bomb-like files are refused. */
async function pdfText(base64: string): Promise<string> {
  if (base64.length > Math.ceil((LIMITS.bytes * 4) / 3) + 4)
    throw KB.DOCUMENT_TOO_LARGE({ limit: `${LIMITS.bytes} bytes` })
  const bytes = Buffer.from(base64, 'base64')
  if (bytes.subarray(0, 5).toString('latin1') !== '%PDF-')
    throw KB.DOCUMENT_UNREADABLE({ format: 'pdf', reason: 'it is not a PDF (no %PDF- header)' })
  const { extractText, getDocumentProxy } = await import('unpdf')
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(KB.DOCUMENT_UNREADABLE({ format: 'pdf', reason: `reading it took over ${LIMITS.pdfMs} ms` })),
      LIMITS.pdfMs,
    )
  })
  try {
    const read = (async () => {
      const pdf = await getDocumentProxy(new Uint8Array(bytes))
      if (pdf.numPages > LIMITS.pdfPages) throw KB.DOCUMENT_TOO_LARGE({ limit: `${LIMITS.pdfPages} pages` })
      const { text } = await extractText(pdf, { mergePages: false })
      return text as string[]
    })()
    const pages = await Promise.race([read, timeout])
    let total = 0
    for (const page of pages) {
      total += page.length
      if (total > LIMITS.chars) throw KB.DOCUMENT_TOO_LARGE({ limit: `${LIMITS.chars} characters of text` })
    }
    const text = pages.map((p) => p.replace(/[ \t]*\n[ \t]*/g, '\n').trim()).join('\n\n')
    if (text.trim() === '') throw KB.DOCUMENT_EMPTY({ format: 'pdf' })
    return text
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('KB_ERR_')) throw err
    throw KB.DOCUMENT_UNREADABLE({ format: 'pdf', reason: (err as Error).message?.slice(0, 200) || 'broken file' })
  } finally {
    clearTimeout(timer)
  }
}
