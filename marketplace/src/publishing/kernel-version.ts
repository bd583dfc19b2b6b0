import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

let cached: string | undefined

/** The kernel's version (core/package.json): what `engines.trellis` ranges are checked against. */
export function kernelVersion(): string {
  if (cached) return cached
  const entry = createRequire(import.meta.url).resolve('@trellis/core') // <core>/src/index.ts
  const pkg = JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as {
    name: string
    version: string
  }
  if (pkg.name !== '@trellis/core') throw new Error(`expected @trellis/core's package.json, found ${pkg.name}`)
  cached = pkg.version
  return cached
}
