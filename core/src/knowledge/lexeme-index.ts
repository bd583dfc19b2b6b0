/**
 * Which loaded chunks of a base hold each full-text lexeme (the lexemes of their stored `tsv`,
 * as PostgreSQL's `english` configuration made them), so a query can name the few chunks its
 * terms can match before SQL ranks them (ADR 0100). Under row-level security PostgreSQL cannot
 * use the GIN index on `tsv` for `tsv @@ query` (`@@` is not leakproof, so it must wait for the
 * policy's own checks), and would test every chunk of the visible documents; the primary key
 * (`uuid` and `text` equality, leakproof) it can use. SQL still tests `tsv @@ query` on what it
 * is given, so a candidate too many costs a row, and the set is never smaller than SQL's own
 * matches: a prefix query `'lexeme':*` matches exactly the chunks holding a lexeme that starts
 * with it, and this index holds every lexeme of every loaded chunk.
 */
export class LexemeIndex {
  /** lexeme → ordinals of the chunks holding it. */
  private readonly postings = new Map<string, number[]>()
  /** The lexemes by their first three characters (all of a shorter one), for prefix look-ups. */
  private readonly byStart = new Map<string, string[]>()

  /** Adds chunk `ordinal`, holding `lexemes` (each once). */
  add(ordinal: number, lexemes: readonly string[]): void {
    for (const l of lexemes) {
      let list = this.postings.get(l)
      if (!list) {
        list = []
        this.postings.set(l, list)
        const start = l.slice(0, 3)
        const bucket = this.byStart.get(start)
        if (bucket) bucket.push(l)
        else this.byStart.set(start, [l])
      }
      list.push(ordinal)
    }
  }

  /** The lexemes that start with `prefix`. */
  private withPrefix(prefix: string): string[] {
    if (prefix.length >= 3) return (this.byStart.get(prefix.slice(0, 3)) ?? []).filter((l) => l.startsWith(prefix))
    const out: string[] = []
    for (const [start, bucket] of this.byStart) if (start.startsWith(prefix)) out.push(...bucket)
    return out
  }

  /** How many chunks a prefix query on `prefixes` matches (an upper bound: a chunk may count more than once). */
  count(prefixes: readonly string[]): number {
    let n = 0
    for (const p of prefixes) for (const l of this.withPrefix(p)) n += this.postings.get(l)?.length ?? 0
    return n
  }

  /** The ordinals of the chunks a prefix query on any of `prefixes` matches, each once. */
  matches(prefixes: readonly string[]): Set<number> {
    const out = new Set<number>()
    for (const p of prefixes) for (const l of this.withPrefix(p)) for (const o of this.postings.get(l) ?? []) out.add(o)
    return out
  }
}
