/**
 * A growing list of SQL parameters: every value and every field name goes into SQL text as a
 * `?` placeholder, never as text.
 */
export class SqlParams {
  /** The values, in placeholder order. */
  readonly values: unknown[] = []

  /** Adds `value` and returns its placeholder. */
  add(value: unknown): '?' {
    this.values.push(value)
    return '?'
  }

  /** Adds a JSON value and returns a `jsonb` expression for it. */
  json(value: unknown): string {
    return `${this.add(JSON.stringify(value ?? null))}::jsonb`
  }

  /** Adds a string and returns a `text` expression for it. */
  text(value: string): string {
    return `${this.add(value)}::text`
  }
}
