// The host-call transcript of one invocation: what the plugin was given and each host call it
// made (op, a summary of its arguments, of its result or its error code, its duration), like
// an input capture for replaying a function. Bounded, and no more personal than the log lines
// the invocation record already holds: strings are cut short and masked (e-mail, card, IBAN,
// tax id, phone), credential-like keys are dropped, secrets are never kept. Summaries are made
// when the run ends and only for a record that keeps them: every failed run, and successful runs
// within their installation's budget per minute; other runs keep ops, outcomes and durations
// (ADR 0113).
import { isTrellisError } from '@trellis/plugin-sdk'
import { mask, newRedaction } from '../ai/redaction.js'

/** One host call as the transcript keeps it. */
export interface TranscriptCall {
  op: string
  /** A bounded, masked summary of the arguments (left out of a sampled transcript). */
  args?: unknown
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
  /** Set when only ops, outcomes and durations were kept: a successful run past its installation's budget. */
  sampled?: true
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

/** One host call as the recorder holds it until the run ends. */
interface HeldCall {
  op: string
  args: unknown
  ok: boolean
  result?: unknown
  error?: string
  ms: number
}

/**
 * Collects the host calls of one sandboxed run while they go by. Summaries are made only when
 * the record keeps them ({@link transcript}); {@link outline} keeps ops, outcomes and durations.
 */
export class TranscriptRecorder {
  private readonly calls: HeldCall[] = []
  private omitted = 0

  /** Runs the host call `call`, noting it (and its duration) whatever its outcome. */
  async around<T>(op: string, args: unknown, call: () => Promise<T>): Promise<T> {
    const started = performance.now()
    try {
      const result = await call()
      this.note({ op, args, ok: true, result, ms: elapsed(started) })
      return result
    } catch (err) {
      this.note({
        op,
        args,
        ok: false,
        error: isTrellisError(err) ? err.code : 'KRN_ERR_INTERNAL',
        ms: elapsed(started),
      })
      throw err
    }
  }

  /** The calls with bounded, masked summaries of their arguments and results. */
  transcript(): Transcript {
    return {
      calls: this.calls.map((c) => ({
        op: c.op,
        args: summarize(c.args),
        ok: c.ok,
        ...(c.ok ? { result: SECRET_RESULT.has(c.op) ? '[secret]' : summarize(c.result) } : { error: c.error! }),
        ms: c.ms,
      })),
      omitted: this.omitted,
    }
  }

  /** The calls' ops, outcomes and durations only — no argument, result or input is kept. */
  outline(): Transcript {
    return {
      calls: this.calls.map((c) => ({ op: c.op, ok: c.ok, ...(c.ok ? {} : { error: c.error! }), ms: c.ms })),
      omitted: this.omitted,
      sampled: true,
    }
  }

  private note(call: HeldCall) {
    if (this.calls.length >= MAX_CALLS) this.omitted++
    else this.calls.push(call)
  }
}

const elapsed = (started: number) => Math.round((performance.now() - started) * 100) / 100

/**
 * How many successful runs of each installation keep their arguments, results and input in a
 * minute: a token bucket per installation that holds at most `perMinute` and refills at that rate.
 * Failed runs always keep theirs ({@link InvocationRuns}); past the budget a successful run keeps
 * its outline. Installations are forgotten in bulk past {@link MAX_TRACKED}.
 */
export class TranscriptBudget {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()

  constructor(
    private readonly perMinute = DETAILED_PER_MINUTE,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Whether one more successful run of `installationId` keeps its detail now. */
  take(installationId: string): boolean {
    if (this.perMinute === Number.POSITIVE_INFINITY) return true
    if (!(this.perMinute >= 1)) return false
    const t = this.now()
    let b = this.buckets.get(installationId)
    if (!b) {
      if (this.buckets.size >= MAX_TRACKED) this.buckets.clear()
      b = { tokens: this.perMinute, at: t }
      this.buckets.set(installationId, b)
    } else {
      b.tokens = Math.min(this.perMinute, b.tokens + ((t - b.at) * this.perMinute) / 60_000)
      b.at = t
    }
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }
}

/** Successful runs per installation and minute that keep their detail unless the host says otherwise. */
export const DETAILED_PER_MINUTE = 60
const MAX_TRACKED = 10_000
