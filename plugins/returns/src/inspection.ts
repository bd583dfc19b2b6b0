// Inspection on arrival: one authorised line may split between outcomes (some units restocked,
// some scrapped, some sent back to the supplier). The parts of a line together never exceed what
// was authorised, and each outcome appears once per line.
import type { Outcome, RmaLine } from './types.js'

export interface InspectedPart {
  outcome: Outcome
  quantity: number
}

/** The received parts per authorised line (zero quantities dropped), or what is wrong with them. */
export function inspect(
  authorised: RmaLine[],
  received: Array<{ line: number; quantity: number; outcome: Outcome }>,
): { inspected: Map<number, InspectedPart[]>; problems: string[] } {
  const problems: string[] = []
  const inspected = new Map<number, InspectedPart[]>()
  for (const g of received) {
    const parts = inspected.get(g.line) ?? []
    if (parts.some((p) => p.outcome === g.outcome))
      problems.push(`line ${g.line}: ${g.outcome} is given twice; give each outcome once with its quantity`)
    parts.push({ outcome: g.outcome, quantity: g.quantity })
    inspected.set(g.line, parts)
  }
  for (const [line, parts] of inspected) {
    const l = authorised.find((x) => x.line === line)
    const total = parts.reduce((a, p) => a + p.quantity, 0)
    if (!l) problems.push(`line ${line}: not on the authorisation`)
    else if (total > l.quantity)
      problems.push(
        `line ${line}: ${parts.map((p) => `${p.quantity} ${p.outcome}`).join(' + ')} = ${total} received, more than the ${l.quantity} authorised`,
      )
    inspected.set(
      line,
      parts.filter((p) => p.quantity > 0),
    )
  }
  return { inspected, problems }
}
