// Shared text features of the local (no-download) models: tokens, a light stemmer, stop words.

const STOP_WORDS = new Set(
  (
    'a an and are as at be been but by can could did do does for from had has have how i if in into is it its ' +
    'may me might must my no not of on or our shall should so than that the their them then there these they ' +
    'this those to was we were what when where which who whom why will with would you your about after all also ' +
    'any before both each few more most other over same some such only own very just up out down off again once ' +
    'here between during through under until while above below long much many'
  ).split(' '),
)

/** Lower-cased word tokens (letters and digits, any script). */
export function wordTokens(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+(?:['’][\p{L}]+)?/gu) ?? []
}

export function isStopWord(token: string): boolean {
  return STOP_WORDS.has(token)
}

/** A deliberately small suffix stripper: "discounts" ≈ "discount", "approved" ≈ "approve". */
export function stem(token: string): string {
  if (token.length <= 3 || /^\p{N}+$/u.test(token)) return token
  for (const suffix of ['ations', 'ation', 'ingly', 'ings', 'ing', 'ies', 'ied', 'ed', 'es', 's', 'ly']) {
    if (token.endsWith(suffix) && token.length - suffix.length >= 3) {
      const base = token.slice(0, -suffix.length)
      if (suffix === 'ies' || suffix === 'ied') return `${base}y`
      if (suffix === 's' && base.endsWith('s')) return token
      return base
    }
  }
  return token
}

/** Content terms: stemmed tokens that are not stop words. */
export function contentTerms(text: string): string[] {
  return wordTokens(text)
    .filter((w) => !isStopWord(w))
    .map(stem)
}

/** 32-bit FNV-1a over the UTF-16 code units of a string. */
export function fnv1a(value: string, seed = 0x811c9dc5): number {
  let hash = seed >>> 0
  for (let i = 0; i < value.length; i++) {
    hash ^= value.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash >>> 0
}
