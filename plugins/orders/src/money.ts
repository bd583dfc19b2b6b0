// Exact money: decimal strings ↔ 10^-6 units, rounded once, half-up, to the cent.

/** "163.625" → 163625000n (10^-6 units). */
export function toMicros(s: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d{1,6}))?$/.exec(s)
  if (!m) throw new Error(`not an amount: ${s}`)
  const v = BigInt(m[2]!) * 1_000_000n + BigInt((m[3] ?? '').padEnd(6, '0'))
  return m[1] ? -v : v
}

export function fmtMicros(units: bigint): string {
  const neg = units < 0n
  const s = (neg ? -units : units).toString().padStart(7, '0')
  let dec = s.slice(-6)
  while (dec.length > 2 && dec.endsWith('0')) dec = dec.slice(0, -1)
  return `${neg ? '-' : ''}${s.slice(0, -6)}.${dec}`
}

/** Rounds 10^-6 units half-up to cents and formats them (`"12.35"`). */
export function roundToCents(units: bigint): string {
  const neg = units < 0n
  const cents = ((neg ? -units : units) + 5_000n) / 10_000n
  const s = cents.toString().padStart(3, '0')
  return `${neg ? '-' : ''}${s.slice(0, -2)}.${s.slice(-2)}`
}
