// How `trellis-plugin logs` shows an invocation's input and host-call transcript under its line.

/** One host call of an invocation's transcript, as the kernel answers it. */
export interface TranscriptCallView {
  op: string
  args?: unknown
  ok: boolean
  result?: unknown
  error?: string
  ms: number
}

/** An invocation's host calls (the first 50, and how many more there were). */
export interface TranscriptView {
  calls: TranscriptCallView[]
  omitted: number
  /** Only ops, outcomes and durations were kept (a successful run past its installation's budget). */
  sampled?: boolean
}

const WIDTH = 160

function oneLine(value: unknown): string {
  const s = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? 'null')
  return s.length > WIDTH ? `${s.slice(0, WIDTH)}…` : s
}

/** The lines under an invocation: its input, then each host call with its outcome and duration. */
export function formatTranscript(inv: { input?: unknown; transcript?: TranscriptView | null }): string[] {
  const lines: string[] = []
  if (inv.input !== undefined) lines.push(`    input ${oneLine(inv.input)}`)
  for (const [i, c] of (inv.transcript?.calls ?? []).entries()) {
    const outcome = c.ok ? (c.result === undefined ? 'ok' : `→ ${oneLine(c.result)}`) : `✗ ${c.error ?? 'error'}`
    const args = c.args === undefined ? '' : ` ${oneLine(c.args)}`
    lines.push(`    #${i + 1} ${c.op}${args} ${outcome} (${c.ms} ms)`)
  }
  if (inv.transcript?.omitted) lines.push(`    … ${inv.transcript.omitted} more host call(s) not kept`)
  if (inv.transcript?.sampled)
    lines.push(
      "    (input, arguments and results not kept: a successful run past its installation's detailed records a minute; PUT /v1/installations/<id>/detail-window keeps every run)",
    )
  return lines
}
