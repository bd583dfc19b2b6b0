// @ts-check
// Shared by the parent (TypeScript) and the worker (plain ESM, type-checked through JSDoc), hence .mjs.
// Everything parsed here came out of an isolate: it is data a hostile plugin chose. JSON.parse
// already makes `__proto__` an own property rather than calling the setter, but a later
// Object.assign or deep merge in the kernel would then pollute Object.prototype, so such keys
// never leave this function.

const POISON = /__proto__|constructor|prototype|\\u/

/**
 * @param {string} key
 * @param {unknown} value
 */
function reviver(key, value) {
  if (key === '__proto__') return undefined
  if ((key === 'constructor' || key === 'prototype') && value !== null && typeof value === 'object') return undefined
  return value
}

/**
 * Parses JSON text from an isolate, dropping keys that could poison a prototype on merge.
 * @param {string} text
 * @returns {unknown}
 */
export function parseUntrustedJson(text) {
  if (text === '') return undefined
  // The reviver costs ~3x a plain parse; only text that could spell a poisoned key needs it
  // (`\u` covers keys written with escapes).
  return POISON.test(text) ? JSON.parse(text, reviver) : JSON.parse(text)
}
