/**
 * Safe unpacking of a plugin package, in memory: nothing touches the file system. The gzip
 * stream is inflated with a hard cap on its output (a gzip bomb stops at the cap, never
 * allocating more) and a cap on its expansion ratio; the tar stream is parsed strictly and every
 * entry must be a plain file at one of the package's exact paths — no absolute paths, no `..`,
 * no links, devices, FIFOs or directories, no duplicates — and SHA256SUMS must match.
 */
import { createHash } from 'node:crypto'
import { gunzipSync } from 'node:zlib'
import { Parser, type ReadEntry } from 'tar'
import { PACKAGE_FILES, sha256sums } from '@trellis/plugin-sdk'
import { MKT } from '../errors.js'
import { PUBLISH_LIMITS } from './limits.js'

/** The files of a package, by path. */
export type PackageFiles = Record<(typeof PACKAGE_FILES)[number], Buffer>

/** What unpacking learned, for the `package` check's details. */
export interface Unpacked {
  files: PackageFiles
  packedBytes: number
  unpackedBytes: number
}

// Compression ratios are only meaningful once there is something to compress: a tiny package
// is mostly tar headers and padding, which compress extremely well.
const RATIO_FLOOR_BYTES = 1024 * 1024

/** Why a path may never be extracted, or undefined when it is an ordinary relative path. */
export function unsafePathReason(path: string): string | undefined {
  if (path.length === 0) return 'an empty path'
  if (path.includes('\0')) return 'a NUL byte in the path'
  if (path.startsWith('/') || path.startsWith('\\') || /^[A-Za-z]:/.test(path)) return 'an absolute path'
  if (path.includes('\\')) return 'a backslash in the path'
  if (path.split('/').some((s) => s === '..')) return 'a ".." path segment'
  return undefined
}

export async function unpackPackage(tgz: Buffer, limits = PUBLISH_LIMITS): Promise<Unpacked> {
  if (tgz.length < 18 || tgz[0] !== 0x1f || tgz[1] !== 0x8b)
    throw MKT.PACKAGE_CORRUPT({ reason: 'it is not gzip data' })
  let tar: Buffer
  try {
    tar = gunzipSync(tgz, { maxOutputLength: limits.unpackedBytes + 1 })
  } catch (err) {
    const code = (err as { code?: string }).code
    if (
      code === 'ERR_BUFFER_TOO_LARGE' ||
      (err instanceof RangeError && /maxOutputLength|too large|Cannot create a Buffer/i.test(err.message))
    )
      throw MKT.UNPACKED_TOO_LARGE({ limit: limits.unpackedBytes })
    throw MKT.PACKAGE_CORRUPT({ reason: `gzip: ${(err as Error).message}` })
  }
  if (tar.length > limits.unpackedBytes) throw MKT.UNPACKED_TOO_LARGE({ limit: limits.unpackedBytes })
  if (tar.length > RATIO_FLOOR_BYTES && tar.length / tgz.length > limits.compressionRatio) {
    throw MKT.COMPRESSION_RATIO({ ratio: Math.round(tar.length / tgz.length), limit: limits.compressionRatio })
  }
  const files = await parseTar(tar, limits.files)
  for (const path of PACKAGE_FILES)
    if (!files.has(path)) throw MKT.PACKAGE_CONTENTS({ reason: `${path} is missing`, expected: PACKAGE_FILES })
  const pkg = Object.fromEntries(PACKAGE_FILES.map((p) => [p, files.get(p)!])) as PackageFiles
  checkSums(pkg)
  return { files: pkg, packedBytes: tgz.length, unpackedBytes: tar.length }
}

function parseTar(tar: Buffer, maxEntries: number): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) => {
    const files = new Map<string, Buffer>()
    let entries = 0
    let failed: Error | undefined
    const fail = (err: Error) => {
      if (failed) return
      failed = err
      parser.abort(err)
      reject(err)
    }
    const parser = new Parser({
      strict: true,
      // Pax and GNU long-name headers are applied to the entry that follows; the entry itself is
      // what is checked. Global pax headers are refused below.
      onwarn: (code: string, message: string | Error) =>
        fail(
          MKT.PACKAGE_CORRUPT({ reason: `tar: ${code} ${typeof message === 'string' ? message : message.message}` }),
        ),
    })
    // Entries are only ever held in memory, so a refused one is noted and the count goes on:
    // too many entries is reported as such, whatever else is wrong with them.
    let refused: Error | undefined
    const refuse = (err: Error) => {
      refused ??= err
    }
    parser.on('entry', (entry: ReadEntry) => {
      if (failed) return entry.resume()
      entries++
      if (entries > maxEntries) return fail(MKT.TOO_MANY_FILES({ limit: maxEntries }))
      if (refused) return entry.resume()
      const path = entry.path
      const unsafe = unsafePathReason(path)
      let problem: Error | undefined
      if (unsafe) problem = MKT.UNSAFE_ENTRY({ path: printable(path), reason: unsafe })
      else if (entry.type === 'SymbolicLink')
        problem = MKT.UNSAFE_ENTRY({
          path: printable(path),
          reason: `a symbolic link (to ${printable(entry.linkpath ?? '')})`,
        })
      else if (entry.type === 'Link')
        problem = MKT.UNSAFE_ENTRY({
          path: printable(path),
          reason: `a hard link (to ${printable(entry.linkpath ?? '')})`,
        })
      else if (entry.type === 'CharacterDevice' || entry.type === 'BlockDevice' || entry.type === 'FIFO')
        problem = MKT.UNSAFE_ENTRY({ path: printable(path), reason: `a ${entry.type} entry` })
      else if (entry.type !== 'File' && entry.type !== 'OldFile')
        problem = MKT.PACKAGE_CONTENTS({
          reason: `${printable(path)} is a ${entry.type} entry, not a file`,
          expected: PACKAGE_FILES,
        })
      else if (!(PACKAGE_FILES as readonly string[]).includes(path))
        problem = MKT.PACKAGE_CONTENTS({ reason: `${printable(path)} is not a package file`, expected: PACKAGE_FILES })
      else if (files.has(path))
        problem = MKT.PACKAGE_CONTENTS({ reason: `${path} appears twice`, expected: PACKAGE_FILES })
      if (problem) {
        refuse(problem)
        return entry.resume()
      }
      const chunks: Buffer[] = []
      entry.on('data', (c: Buffer) => chunks.push(c))
      entry.on('end', () => {
        if (!failed) files.set(path, Buffer.concat(chunks))
      })
    })
    parser.on('error', (err: Error) => fail(MKT.PACKAGE_CORRUPT({ reason: `tar: ${err.message}` })))
    parser.on('end', () => {
      if (failed) return
      if (refused) return fail(refused)
      if (entries === 0) return fail(MKT.PACKAGE_CORRUPT({ reason: 'the archive holds no entries' }))
      resolve(files)
    })
    try {
      parser.end(tar)
    } catch (err) {
      fail(MKT.PACKAGE_CORRUPT({ reason: `tar: ${(err as Error).message}` }))
    }
  })
}

function checkSums(pkg: PackageFiles): void {
  const expected = sha256sums({
    'trellis.plugin.json': pkg['trellis.plugin.json'],
    'dist/plugin.js': pkg['dist/plugin.js'],
    'dist/plugin.js.map': pkg['dist/plugin.js.map'],
  })
  const want = new Map(
    expected
      .trim()
      .split('\n')
      .map((l) => [l.slice(66), l.slice(0, 64)]),
  )
  const lines = pkg.SHA256SUMS.toString('utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
  const got = new Map<string, string>()
  for (const line of lines) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim())
    if (!m) throw MKT.CHECKSUMS_MISMATCH({ path: 'SHA256SUMS (a line is not "<sha256>  <path>")' })
    got.set(m[2]!, m[1]!)
  }
  for (const [path, sum] of want) if (got.get(path) !== sum) throw MKT.CHECKSUMS_MISMATCH({ path })
  for (const path of got.keys())
    if (!want.has(path)) throw MKT.CHECKSUMS_MISMATCH({ path: `${printable(path)} (not a package file)` })
}

/** Hex sha256. */
export function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex')
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 200)
}
