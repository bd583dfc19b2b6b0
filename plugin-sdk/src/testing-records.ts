// Record helpers of the in-memory test host: filters, ordering and ids as the kernel applies them.
import { randomBytes } from 'node:crypto'

/** Orders two field values as the kernel's `orderBy` does (nulls first). */
export function compare(a: unknown, b: unknown): number {
  if (a === b) return 0
  if (a === undefined || a === null) return -1
  if (b === undefined || b === null) return 1
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0
}

/** Whether a record satisfies a collection query filter, as the kernel's compiler reads it. */
export function matches(record: Record<string, unknown>, filter: Record<string, unknown>): boolean {
  for (const [key, cond] of Object.entries(filter)) {
    if (key === 'and') {
      if (!(cond as Record<string, unknown>[]).every((f) => matches(record, f))) return false
      continue
    }
    if (key === 'or') {
      if (!(cond as Record<string, unknown>[]).some((f) => matches(record, f))) return false
      continue
    }
    const v = record[key]
    const c =
      cond !== null && typeof cond === 'object' && !Array.isArray(cond)
        ? (cond as Record<string, unknown>)
        : { eq: cond }
    for (const [op, x] of Object.entries(c)) {
      const ok =
        op === 'eq'
          ? equal(v, x)
          : op === 'ne'
            ? !equal(v, x)
            : op === 'in'
              ? (x as unknown[]).some((y) => equal(v, y))
              : op === 'lt'
                ? v !== undefined && v !== null && compare(v, x) < 0
                : op === 'lte'
                  ? v !== undefined && v !== null && compare(v, x) <= 0
                  : op === 'gt'
                    ? v !== undefined && v !== null && compare(v, x) > 0
                    : op === 'gte'
                      ? v !== undefined && v !== null && compare(v, x) >= 0
                      : op === 'prefix'
                        ? typeof v === 'string' && v.startsWith(String(x))
                        : op === 'contains'
                          ? typeof v === 'string'
                            ? v.includes(String(x))
                            : Array.isArray(v)
                              ? v.some((y) => equal(y, x))
                              : false
                          : false
      if (!ok) return false
    }
  }
  return true
}

function equal(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null)
}

// Like the kernel's ids: UUIDv7, so id order is insertion order (the test clock moves 1 ms per write).
export function uuidv7(ms: number): string {
  const r = randomBytes(10).toString('hex')
  const ts = ms.toString(16).padStart(12, '0')
  const variant = ((parseInt(r[3]!, 16) & 0x3) | 0x8).toString(16)
  return `${ts.slice(0, 8)}-${ts.slice(8, 12)}-7${r.slice(0, 3)}-${variant}${r.slice(4, 7)}-${r.slice(7, 19)}`
}
