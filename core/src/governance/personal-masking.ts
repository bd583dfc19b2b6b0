/**
 * Keeps classified personal values out of what the kernel keeps and shows about an invocation —
 * its log lines, input summary and transcript: every occurrence of a value of a `personal` or
 * `sensitive-personal` field the invocation read or wrote is replaced, and so is the value of
 * any key named like one of the plugin's personal fields.
 */
import { encryptedFields, type PluginManifest } from '@trellis/plugin-sdk'

/** What replaces a personal value. */
export const PERSONAL_MASK = '[personal]'

/** Values shorter than this are left (masking them would garble unrelated text). */
const MIN_MASKED = 3

const fieldsOf = new WeakMap<object, ReadonlySet<string>>()

/** The names of the personal fields of a manifest's collections (cached per manifest). */
export function personalFieldNames(manifest: Pick<PluginManifest, 'collections'>): ReadonlySet<string> {
  let set = fieldsOf.get(manifest)
  if (!set) {
    set = new Set(Object.values(manifest.collections ?? {}).flatMap((c) => encryptedFields(c.schema)))
    fieldsOf.set(manifest, set)
  }
  return set
}

/** `value` with personal values and personal-named keys' values masked (a copy; `value` untouched). */
export function maskPersonal(value: unknown, values: readonly string[], names: ReadonlySet<string>): unknown {
  const needles = [...new Set(values.filter((v) => typeof v === 'string' && v.length >= MIN_MASKED))].sort(
    (a, b) => b.length - a.length,
  )
  if (!needles.length && !names.size) return value
  const text = (s: string) => {
    let out = s
    for (const n of needles) if (out.includes(n)) out = out.split(n).join(PERSONAL_MASK)
    return out
  }
  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') return text(v)
    if (depth > 16 || v === null || typeof v !== 'object') return v
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1))
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [
        k,
        names.has(k) && x !== null && x !== undefined ? PERSONAL_MASK : walk(x, depth + 1),
      ]),
    )
  }
  return walk(value, 0)
}
