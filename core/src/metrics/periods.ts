/** Calendar periods of a grain (UTC): the start of the next period, and whether one is complete. */
import type { Grain } from './types.js'

/** `YYYY-MM-DD` of the period after the one starting at `start`. */
export function nextPeriod(start: string, grain: Grain): string {
  const d = new Date(`${start}T00:00:00Z`)
  if (grain === 'day') d.setUTCDate(d.getUTCDate() + 1)
  else if (grain === 'week') d.setUTCDate(d.getUTCDate() + 7)
  else if (grain === 'month') d.setUTCMonth(d.getUTCMonth() + 1)
  else if (grain === 'quarter') d.setUTCMonth(d.getUTCMonth() + 3)
  else d.setUTCFullYear(d.getUTCFullYear() + 1)
  return d.toISOString().slice(0, 10)
}

/** The start of the period holding `date` (weeks start on Monday, as PostgreSQL's `date_trunc`). */
export function periodOf(date: string, grain: Grain): string {
  const d = new Date(`${date.slice(0, 10)}T00:00:00Z`)
  if (grain === 'week') d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7))
  if (grain === 'month' || grain === 'quarter' || grain === 'year') d.setUTCDate(1)
  if (grain === 'quarter') d.setUTCMonth(d.getUTCMonth() - (d.getUTCMonth() % 3))
  if (grain === 'year') d.setUTCMonth(0)
  return d.toISOString().slice(0, 10)
}

/**
 * A period is complete when it ended by `today` (a `YYYY-MM-DD`) and the query's window covers
 * all of it: an incomplete period is never compared as if it were complete.
 */
export function isComplete(start: string, grain: Grain, today: string, from?: string, to?: string): boolean {
  const end = nextPeriod(start, grain)
  if (end > today) return false
  if (to && end > to) return false
  if (from && start < from) return false
  return true
}
