/** The budget period of an instant: its UTC month, `YYYY-MM`. */
export function periodOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7)
}

/** The first instant of a `YYYY-MM` period and of the next one. */
export function periodBounds(period: string): { from: string; to: string } {
  const [y, m] = period.split('-').map(Number) as [number, number]
  return { from: new Date(Date.UTC(y, m - 1, 1)).toISOString(), to: new Date(Date.UTC(y, m, 1)).toISOString() }
}

/** Rough token count of text (4 characters a token), for estimates and for endpoints that report none. */
export function tokensOf(text: string): number {
  return Math.ceil(text.length / 4)
}

/** Cost in micro-units of money for token counts at prices per 1k tokens (in micro-units). */
export function costMicros(inputTokens: number, outputTokens: number, priceIn: number, priceOut: number): number {
  return Math.ceil((inputTokens * priceIn + outputTokens * priceOut) / 1000)
}

/**
 * An upper bound of the input tokens of texts, for reservations: tokenizers rarely spend more
 * than a token per two characters, plus a few per message for the chat template.
 */
export function tokenBound(texts: readonly string[]): number {
  return texts.reduce((n, t) => n + Math.ceil(t.length / 2) + 8, 0)
}
