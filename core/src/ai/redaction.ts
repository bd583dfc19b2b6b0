/**
 * Masks personal data before text leaves the kernel for a model: e-mail addresses, payment card
 * numbers (Luhn-checked), IBANs (mod-97-checked), tax ids, phone numbers, and any value the
 * caller names as personal (fields a plugin's collection schema marks `personal`). Each value
 * becomes a placeholder such as `[EMAIL_1]`; the same value gets the same placeholder within
 * one call, so the model can still refer to it, and {@link unmask} puts it back for a caller
 * who may see it.
 */
export interface Redaction {
  /** placeholder → original value */
  values: Map<string, string>
  /** How many values of each kind were masked (recorded as a guard verdict). */
  counts: Record<string, number>
}

export function newRedaction(): Redaction {
  return { values: new Map(), counts: {} }
}

const EMAIL = /[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.\p{L}{2,}/gu
const CARD = /\b(?:\d[ -]?){12,18}\d\b/g
const IBAN = /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b/g
// VAT ids (two-letter country prefix, 8–12 digits/letters), US EIN and SSN shapes.
const TAX_ID =
  /\b(?:(?:AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|GB|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK)U?\d{8,12}|\d{2}-\d{7}|\d{3}-\d{2}-\d{4})\b/g
const PHONE = /(?<![\w+])\+?\(?\d{1,4}\)?(?:[ .-]?\(?\d{2,4}\)?){2,5}(?![\w])/g

export function luhnValid(digits: string): boolean {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (double) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
    double = !double
  }
  return sum % 10 === 0
}

export function ibanValid(raw: string): boolean {
  const iban = raw.replace(/ /g, '')
  if (iban.length < 15 || iban.length > 34) return false
  const moved = iban.slice(4) + iban.slice(0, 4)
  let rem = 0
  for (const ch of moved) {
    const code = ch.charCodeAt(0)
    const part = code >= 65 ? String(code - 55) : ch
    for (const digit of part) rem = (rem * 10 + (digit.charCodeAt(0) - 48)) % 97
  }
  return rem === 1
}

function placeholder(r: Redaction, kind: string, value: string): string {
  for (const [p, v] of r.values) if (v === value && p.startsWith(`[${kind}_`)) return p
  r.counts[kind] = (r.counts[kind] ?? 0) + 1
  const p = `[${kind}_${r.counts[kind]}]`
  r.values.set(p, value)
  return p
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** Masks `text`, adding what it masked to `r`. */
export function mask(text: string, r: Redaction, personal: readonly string[] = []): string {
  let out = text
  for (const value of personal) {
    if (typeof value !== 'string' || value.trim().length < 3) continue
    out = out.replace(new RegExp(escapeRegExp(value), 'g'), () => placeholder(r, 'PERSONAL', value))
  }
  out = out.replace(EMAIL, (m) => placeholder(r, 'EMAIL', m))
  out = out.replace(IBAN, (m) => (ibanValid(m) ? placeholder(r, 'IBAN', m) : m))
  out = out.replace(CARD, (m) => {
    const digits = m.replace(/[ -]/g, '')
    return digits.length >= 13 && digits.length <= 19 && luhnValid(digits) ? placeholder(r, 'CARD', m) : m
  })
  out = out.replace(TAX_ID, (m) => placeholder(r, 'TAX_ID', m))
  out = out.replace(PHONE, (m) => {
    const digits = m.replace(/\D/g, '')
    return digits.length >= 9 && digits.length <= 15 ? placeholder(r, 'PHONE', m) : m
  })
  return out
}

/** Puts masked values back (for a caller who may see them). */
export function unmask(text: string, r: Redaction): string {
  if (r.values.size === 0) return text
  return text.replace(/\[(?:EMAIL|CARD|IBAN|TAX_ID|PHONE|PERSONAL)_\d+\]/g, (p) => r.values.get(p) ?? p)
}

/** Masks every string inside a JSON value. */
export function unmaskJson(value: unknown, r: Redaction): unknown {
  if (typeof value === 'string') return unmask(value, r)
  if (Array.isArray(value)) return value.map((v) => unmaskJson(v, r))
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unmaskJson(v, r)]))
  return value
}
