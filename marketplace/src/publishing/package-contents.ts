/** What a signed package holds: whose key signed it, its text files decoded exactly, its manifest. */
import { verifyPackageSignature, validateManifest, type PluginManifest } from '@trellis/plugin-sdk'
import { MKT } from '../errors.js'
import type { Unpacked } from './unpack.js'

export interface KeyRow {
  id: string
  public_key: string
  fingerprint: string
  status: 'active' | 'revoked'
}

/** The publisher's key whose signature verifies over `tgz`: active ones first; a revoked match is refused by name. */
export function verifySignature(tgz: Buffer, signature: string, keys: KeyRow[]): KeyRow {
  const verifies = (key: KeyRow) => {
    try {
      return verifyPackageSignature(tgz, signature, key.public_key)
    } catch {
      return false
    }
  }
  const active = keys.filter((k) => k.status === 'active').find(verifies)
  if (active) return active
  const revoked = keys.filter((k) => k.status === 'revoked').find(verifies)
  if (revoked) throw MKT.KEY_REVOKED({ fingerprint: revoked.fingerprint })
  throw MKT.SIGNATURE_INVALID()
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * The package's text files, decoded exactly: what is stored must be the bytes that were signed,
 * so a file that is not valid UTF-8 (decoding would replace bytes) or holds a NUL byte (which
 * PostgreSQL text cannot store) is refused.
 */
export function packageText(pkg: Unpacked): { manifest: string; code: string; sourceMap: string } {
  const decode = (path: keyof Unpacked['files']) => {
    const bytes = pkg.files[path]
    if (bytes.includes(0)) throw MKT.NUL_BYTE({ where: path })
    try {
      return utf8.decode(bytes)
    } catch {
      throw MKT.NOT_UTF8({ where: path })
    }
  }
  return {
    manifest: decode('trellis.plugin.json'),
    code: decode('dist/plugin.js'),
    sourceMap: decode('dist/plugin.js.map'),
  }
}

export function parseManifest(text: string): PluginManifest {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw MKT.MANIFEST_INVALID({ reason: `trellis.plugin.json is not JSON: ${(err as Error).message}` })
  }
  // An escaped NUL ("\u0000") in any string cannot be stored in jsonb.
  if (JSON.stringify(json).includes('\\u0000')) throw MKT.NUL_BYTE({ where: 'a string of trellis.plugin.json' })
  const v = validateManifest(json)
  if (!v.ok) {
    throw MKT.MANIFEST_INVALID({
      reason: `the manifest is invalid: ${v.errors
        .map((e) => `${e.pointer || '/'} ${e.message}`)
        .slice(0, 10)
        .join('; ')}`,
      problems: v.errors.map((e) => ({ pointer: e.pointer, message: e.message })),
    })
  }
  return v.manifest
}
