/** A comma-separated form field (`orders.read, orders.write`) as its trimmed, non-empty items. */
export function commaList(value: FormDataEntryValue | null): string[] {
  return String(value ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
}
