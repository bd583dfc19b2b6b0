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
    return mask(cut, newRedaction())
  }
  if (typeof value === 'number' || typeof value === 'boolean') return value
  if (depth >= MAX_DEPTH) return Array.isArray(value) ? `[${value.length} items]` : '{…}'
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((v) => shape(v, depth + 1))
    return value.length > MAX_ITEMS ? [...items, `… ${value.length - MAX_ITEMS} more`] : items
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
    const kept: Record<string, unknown> = {}
    for (const [k, v] of entries.slice(0, MAX_KEYS))
      kept[k] = CREDENTIAL_KEY.test(k) ? '[redacted]' : shape(v, depth + 1)
    if (entries.length > MAX_KEYS) kept['…'] = `${entries.length - MAX_KEYS} more keys`
    return kept
  }
  return String(value)
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
