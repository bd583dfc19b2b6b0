/**
 * Look-alike scopes. A claim is compared with the reserved scopes and every scope already
 * claimed after reducing each to a skeleton: NFKC, lower case, diacritics and separators
 * dropped, common Unicode confusables (Cyrillic and Greek letters that look Latin) mapped, digit
 * and letter look-alikes folded (0→o, 1/i/|→l, 3→e, 4→a, 5→s, 7→t, 8→b, 9→g) and the
 * two-letter ones (rn→m, vv→w). Equal skeletons, or a reserved name inside the claim
 * (`@trellis-official`), are refused: the platform assigns such scopes itself.
 */
import { RESERVED_SCOPES } from './limits.js'

// Letters from other scripts that render like Latin ones (a subset of Unicode's confusables.txt).
const CONFUSABLE: Record<string, string> = {
  а: 'a',
  в: 'b',
  е: 'e',
  к: 'k',
  м: 'm',
  н: 'h',
  о: 'o',
  р: 'p',
  с: 'c',
  т: 't',
  у: 'y',
  х: 'x',
  ѕ: 's',
  і: 'i',
  ј: 'j',
  ӏ: 'l',
  ԁ: 'd',
  ԛ: 'q',
  ԝ: 'w',
  ь: 'b',
  ү: 'y',
  α: 'a',
  β: 'b',
  ε: 'e',
  η: 'n',
  ι: 'i',
  κ: 'k',
  ν: 'v',
  ο: 'o',
  ρ: 'p',
  τ: 't',
  υ: 'u',
  χ: 'x',
  ω: 'w',
  ϲ: 'c',
  ℓ: 'l',
  ı: 'i',
}
const FOLD: Record<string, string> = {
  '0': 'o',
  '1': 'l',
  i: 'l',
  '|': 'l',
  '!': 'l',
  '3': 'e',
  '4': 'a',
  '5': 's',
  $: 's',
  '7': 't',
  '8': 'b',
  '9': 'g',
  '@': 'a',
}

/** The skeleton two scopes that look alike share. */
export function scopeSkeleton(scope: string): string {
  let s = scope.replace(/^@/, '').normalize('NFKC').toLowerCase()
  s = [...s].map((c) => CONFUSABLE[c] ?? c).join('')
  s = s.normalize('NFD').replace(/\p{M}+/gu, '')
  s = s.replace(/[\s\-_.·‐-―]+/g, '')
  s = s.replace(/rn/g, 'm').replace(/vv/g, 'w')
  return [...s].map((c) => FOLD[c] ?? c).join('')
}

/** Names no partner may claim or imitate: the reserved scopes and words that claim to speak for the platform. */
export const RESERVED_NAMES: readonly string[] = Object.freeze([
  ...RESERVED_SCOPES.map((s) => s.slice(1)),
  'trellis',
  'platform',
  'admin',
  'kernel',
  'marketplace',
  'official',
  'system',
  'security',
  'support',
])

// Reserved words this long are refused anywhere inside a claim; shorter ones only as a whole word.
const CONTAINED_FROM = 6

/**
 * Why `scope` may not be claimed by a partner because it looks like a reserved name or like
 * one of `existing`: the scope it imitates, or undefined.
 */
export function lookAlikeOf(
  scope: string,
  existing: readonly string[],
  opts: { reserved: boolean } = { reserved: true },
): { imitates: string; reason: 'reserved' | 'existing' } | undefined {
  const skeleton = scopeSkeleton(scope)
  if (opts.reserved) {
    const words = scope
      .replace(/^@/, '')
      .normalize('NFKC')
      .toLowerCase()
      .split(/[^\p{L}\p{N}]+/u)
      .map(scopeSkeleton)
    for (const name of new Set(RESERVED_NAMES)) {
      const r = scopeSkeleton(name)
      if (skeleton === r || words.includes(r) || (r.length >= CONTAINED_FROM && skeleton.includes(r)))
        return { imitates: `@${name}`, reason: 'reserved' }
    }
  }
  for (const other of existing) {
    if (other !== scope && scopeSkeleton(other) === skeleton) return { imitates: other, reason: 'existing' }
  }
  return undefined
}
