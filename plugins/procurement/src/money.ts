// Costs as exact decimals: 10^-6 units in, rounded once, half-up, to the cent out.

/** "12.3456" → 12345600n; null when not a non-negative amount with at most 6 decimals. */
export function micros(s: string): bigint | null {
  const m = /^(\d{1,12})(?:\.(\d{1,6}))?$/.exec(s.trim())
  return m ? BigInt(m[1]!) * 1_000_000n + BigInt((m[2] ?? '').padEnd(6, '0')) : null
}

/** 10^-6 units as a decimal string with at least 2 decimals. */
export function exact(units: bigint): string {
  const neg = units < 0n
  const s = (neg ? -units : units).toString().padStart(7, '0')
  const dec = s.slice(-6).replace(/0{1,4}$/, '')
  return `${neg ? '-' : ''}${s.slice(0, -6)}.${dec.padEnd(2, '0')}`
}

/** 10^-6 units rounded half-up to the cent. */
export function cents(units: bigint): string {
  const neg = units < 0n
  return exact((((neg ? -units : units) + 5_000n) / 10_000n) * 10_000n * (neg ? -1n : 1n))
}
