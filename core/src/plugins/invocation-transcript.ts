// The host-call transcript of one invocation: what the plugin was given and each host call it
// made (op, a summary of its arguments, of its result or its error code, its duration), like
// an input capture for replaying a function. Bounded, and no more personal than the log lines
// the invocation record already holds: strings are cut short and masked (e-mail, card, IBAN,
// tax id, phone), credential-like keys are dropped, secrets are never kept.
import { isTrellisError } from '@trellis/plugin-sdk'
import { mask, newRedaction } from '../ai/redaction.js'

/** One host call as the transcript keeps it. */
export interface TranscriptCall {
  op: string
  /** A bounded, masked summary of the arguments. */
  args: unknown
  ok: boolean
  /** A bounded, masked summary of the result (ok calls). */
  result?: unknown
  /** The error code (failed calls). */
  error?: string
  ms: number
}

/** What an invocation record keeps of its host calls: the first {@link MAX_CALLS}, and how many more there were. */
export interface Transcript {
  calls: TranscriptCall[]
  omitted: number
}

export const MAX_CALLS = 50
const MAX_STRING = 120
const MAX_ITEMS = 5
const MAX_KEYS = 16
const MAX_DEPTH = 4
const MAX_SUMMARY = 1500
const CREDENTIAL_KEY = /pass(word)?|secret|token|authori[sz]ation|api[-_]?key|cookie|signature/i
/** Ops whose result is never kept. */
const SECRET_RESULT = new Set(['secrets.get'])

/**
 * A short, masked rendering of a JSON value: strings to {@link MAX_STRING} characters, arrays to
 * their first items, objects to their first keys, nesting to {@link MAX_DEPTH}; values under
 * credential-like keys become `[redacted]`. The whole summary stays under ~1.5 kB.
 */
export function summarize(value: unknown): unknown {
  const out = shape(value, 0)
  const json = JSON.stringify(out) ?? 'null'
  return json.length <= MAX_SUMMARY ? out : `${json.slice(0, MAX_SUMMARY)}…`
}

function shape(value: unknown, depth: number): unknown {
  if (value === null || value === undefined) return null
  if (typeof value === 'string') {
    const cut = value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}… (${value.length} chars)` : value
    return maskable(cut) ? mask(cut, newRedaction()) : cut
  }
  if (typeof value === 'number' || typeof value === 'boolean') return value
  if (depth >= MAX_DEPTH) return Array.isArray(value) ? `[${value.length} items]` : '{…}'
  if (Array.isArray(value)) {
    const n = Math.min(value.length, MAX_ITEMS)
    const items: unknown[] = new Array(n)
    for (let i = 0; i < n; i++) items[i] = shape(value[i], depth + 1)
    if (value.length > MAX_ITEMS) items.push(`… ${value.length - MAX_ITEMS} more`)
    return items
  }
  if (typeof value === 'object') {
    const keys = Object.keys(value)
    const n = Math.min(keys.length, MAX_KEYS)
    const kept: Record<string, unknown> = {}
    for (let i = 0; i < n; i++) {
      const k = keys[i]!
      kept[k] = CREDENTIAL_KEY.test(k) ? '[redacted]' : shape((value as Record<string, unknown>)[k], depth + 1)
    }
    if (keys.length > MAX_KEYS) kept['…'] = `${keys.length - MAX_KEYS} more keys`
    return kept
  }
  return String(value)
}

/**
 * Whether `mask` (without personal values) could change `text`: each kind it masks needs an `@`
 * (e-mail), two digits after two capitals in 15 characters or more (IBAN), or at least 8 digits
 * (card 13, tax id 8, phone 9). Most strings of a record — names, codes, short numbers — have
 * none of these, and skip its five regular expressions (most of a transcript's cost, the e-mail's
 * Unicode classes first); so do the ids and timestamps the kernel writes, which hold no match.
 */
export function maskable(text: string): boolean {
  let digits = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 64 /* @ */) return true
    if (c >= 48 && c <= 57 && ++digits >= 8) return !inert(text)
  }
  return digits >= 2 && text.length >= 15 && IBAN_START.test(text)
}

const IBAN_START = /[A-Z]{2}\d{2}/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const DIGITS_ONLY_GROUP = /(?:^|-)\d+(?:-|$)/
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z$/

/**
 * A lower-case UUID whose every group holds a letter, or an ISO timestamp in UTC: without `@` or
 * two capitals in a row, only digit runs could match, and each pattern needs a run that starts
 * and ends at a non-word character — a whole group of digits, which such a UUID has not; a
 * timestamp's runs hold fewer digits than any kind needs (its date matches the phone shape with
 * 6 digits, which the phone's check leaves as it is).
 */
function inert(text: string): boolean {
  return (text.length === 36 && UUID.test(text) && !DIGITS_ONLY_GROUP.test(text)) || ISO_TIME.test(text)
}

/** Collects the transcript of one sandboxed run while its host calls go by. */
export class TranscriptRecorder {
  private readonly calls: TranscriptCall[] = []
  private omitted = 0

  /** Runs the host call `call`, noting it (and its duration) whatever its outcome. */
  async around<T>(op: string, args: unknown, call: () => Promise<T>): Promise<T> {
    const started = performance.now()
    try {
      const result = await call()
      this.note(op, args, started, { ok: true, result: SECRET_RESULT.has(op) ? '[secret]' : summarize(result) })
      return result
    } catch (err) {
      this.note(op, args, started, { ok: false, error: isTrellisError(err) ? err.code : 'KRN_ERR_INTERNAL' })
      throw err
    }
  }

  /** What was noted so far. */
  transcript(): Transcript {
    return { calls: [...this.calls], omitted: this.omitted }
  }

  private note(op: string, args: unknown, started: number, outcome: Pick<TranscriptCall, 'ok' | 'result' | 'error'>) {
    if (this.calls.length >= MAX_CALLS) {
      this.omitted++
      return
    }
    const ms = Math.round((performance.now() - started) * 100) / 100
    this.calls.push({ op, args: summarize(args), ...outcome, ms })
  }
}
