/**
 * Which plugin queries run as named prepared statements. A query's text is its shape and names
 * (fields.ts), so the few queries a plugin's code makes are each parsed once per connection and
 * planned from a cached plan, as the kernel's own SQL is. A plugin may still build queries of
 * ever new shapes: only the first {@link MAX_NAMED_QUERIES} distinct texts become statements
 * (each connection keeps every statement it prepared); later ones run unnamed, as before.
 */
export const MAX_NAMED_QUERIES = 512

export class QueryStatements {
  private readonly named = new Set<string>()

  constructor(private readonly max = MAX_NAMED_QUERIES) {}

  /** Whether `text` runs as a named statement: it already is one, or there is room for it. */
  admit(text: string): boolean {
    if (this.named.has(text)) return true
    if (this.named.size >= this.max) return false
    this.named.add(text)
    return true
  }

  /** Distinct texts admitted so far. */
  get size(): number {
    return this.named.size
  }
}
