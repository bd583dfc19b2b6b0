import { Ajv, type ValidateFunction } from 'ajv'

/** Checks answers against the JSON Schema a call asked for (compiled schemas kept, at most 256). */
export class StructuredOutput {
  private readonly ajv = new Ajv({ allErrors: false, strict: false })
  private readonly validators = new Map<string, ValidateFunction>()

  /** null when `text` is JSON valid against `schema`, else what is wrong. */
  check(schema: object, text: string): string | null {
    const key = JSON.stringify(schema)
    let validate = this.validators.get(key)
    if (!validate) {
      validate = this.ajv.compile(schema)
      if (this.validators.size > 256) this.validators.clear()
      this.validators.set(key, validate)
    }
    const value = parseJson(text)
    if (value === undefined) return 'the answer is not JSON'
    if (validate(value)) return null
    return this.ajv.errorsText(validate.errors)
  }
}

/** The JSON in an answer (inside a ``` fence when there is one), or undefined. */
export function parseJson(text: string): unknown {
  const fenced = /```(?:json)?\s*([\s\S]*?)```/.exec(text)
  try {
    return JSON.parse((fenced ? fenced[1]! : text).trim())
  } catch {
    return undefined
  }
}
