/**
 * Packing and signing: `<name>-<version>.tgz` holding exactly `trellis.plugin.json`,
 * `dist/plugin.js`, `dist/plugin.js.map` and `SHA256SUMS`, plus a detached Ed25519 signature
 * over the tarball's bytes in `<name>-<version>.tgz.sig` (base64, one line). Node-only.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto'
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SIZE_LIMITS } from './manifest.js'
import { SDK } from './sdk-errors.js'

/** Files of a plugin package, in the order they are packed. */
export const PACKAGE_FILES = Object.freeze([
  'trellis.plugin.json',
  'dist/plugin.js',
  'dist/plugin.js.map',
  'SHA256SUMS',
])

/** `@acme/orders` + `1.2.0` → `acme-orders-1.2.0.tgz`. */
export function packageFileName(name: string, version: string): string {
  return `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`
}

/** `SHA256SUMS` text (`sha256sum` format: hex, two spaces, path) for the given files. */
export function sha256sums(files: Record<string, Buffer | string>): string {
  return Object.entries(files)
    .map(([path, bytes]) => `${createHash('sha256').update(bytes).digest('hex')}  ${path}\n`)
    .join('')
}

/** A key pair written by {@link generateSigningKeys}. */
export interface SigningKeyFiles {
  /** PKCS#8 PEM private key, mode 0600. */
  privateKeyPath: string
  /** SPKI PEM public key: register this with the marketplace. */
  publicKeyPath: string
  /** `SHA256:<base64>` of the raw public key, to compare with what the marketplace shows. */
  fingerprint: string
}

/** Default key directory: `$TRELLIS_KEYS_DIR`, else `~/.trellis/keys`. */
export function defaultKeysDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.TRELLIS_KEYS_DIR || join(env.HOME || env.USERPROFILE || '.', '.trellis', 'keys')
}

/** Fingerprint of an Ed25519 public key: `SHA256:` + base64 of sha256 over the raw 32 bytes. */
export function keyFingerprint(publicKey: KeyObject): string {
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url')
  return `SHA256:${createHash('sha256').update(raw).digest('base64').replace(/=+$/, '')}`
}

/** Generates an Ed25519 key pair into `dir` (`signing-key.pem` 0600, `signing-key.pub.pem`). */
export async function generateSigningKeys(dir: string, { force = false } = {}): Promise<SigningKeyFiles> {
  const privateKeyPath = join(dir, 'signing-key.pem')
  const publicKeyPath = join(dir, 'signing-key.pub.pem')
  if (!force && (await exists(privateKeyPath))) throw SDK.KEY_EXISTS({ path: privateKeyPath })
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await writeFile(privateKeyPath, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 })
  await chmod(privateKeyPath, 0o600) // when it already existed, writeFile kept its old mode
  await writeFile(publicKeyPath, publicKey.export({ format: 'pem', type: 'spki' }), { mode: 0o644 })
  return { privateKeyPath, publicKeyPath, fingerprint: keyFingerprint(publicKey) }
}

/** Loads an Ed25519 private key (SDK_ERR_KEY_NOT_FOUND / SDK_ERR_KEY_INVALID). */
export async function loadSigningKey(path: string): Promise<KeyObject> {
  let pem: string
  try {
    pem = await readFile(path, 'utf8')
  } catch {
    throw SDK.KEY_NOT_FOUND({ path })
  }
  let key: KeyObject
  try {
    key = createPrivateKey(pem)
  } catch (err) {
    throw SDK.KEY_INVALID({ path, reason: (err as Error).message })
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw SDK.KEY_INVALID({ path, reason: `it is a ${key.asymmetricKeyType} key, not Ed25519` })
  if (process.platform !== 'win32' && ((await stat(path)).mode & 0o077) !== 0)
    throw SDK.KEY_INVALID({ path, reason: 'it is readable by others (chmod 600 it)' })
  return key
}

/** What {@link packPlugin} wrote. */
export interface PackResult {
  /** The tarball. */
  tarballPath: string
  /** The detached signature next to it. */
  signaturePath: string
  /** Hex sha256 of the tarball. */
  sha256: string
  /** Tarball size in bytes. */
  bytes: number
  /** Files in the tarball. */
  files: string[]
  /** Fingerprint of the signing key. */
  fingerprint: string
}

/**
 * Packs and signs. `files` are the package contents (manifest text, bundle, source map);
 * the tarball is reproducible (fixed mtimes, no owner names).
 */
export async function packPlugin(opts: {
  name: string
  version: string
  manifest: string
  bundle: string
  sourceMap: string
  outDir: string
  privateKey: KeyObject
}): Promise<PackResult> {
  const contents: Record<string, string> = {
    'trellis.plugin.json': opts.manifest,
    'dist/plugin.js': opts.bundle,
    'dist/plugin.js.map': opts.sourceMap,
  }
  contents.SHA256SUMS = sha256sums(contents)
  const stage = await mkdtemp(join(tmpdir(), 'trellis-pack-'))
  try {
    await mkdir(join(stage, 'dist'))
    for (const [path, text] of Object.entries(contents)) {
      await writeFile(join(stage, path), text)
      await chmod(join(stage, path), 0o644) // the same modes whatever the packer's umask
    }
    await mkdir(opts.outDir, { recursive: true })
    const tarballPath = join(opts.outDir, packageFileName(opts.name, opts.version))
    const { create: createTar } = await import('tar') // loaded on use: importing the SDK stays cheap
    await createTar(
      { gzip: true, file: tarballPath, cwd: stage, portable: true, mtime: new Date(0), noDirRecurse: true },
      [...PACKAGE_FILES],
    )
    const bytes = await readFile(tarballPath)
    if (bytes.length > SIZE_LIMITS.packageBytes) {
      await rm(tarballPath, { force: true })
      throw SDK.VALIDATION_FAILED(
        { errors: 1 },
        { cause: new Error(`the package is ${bytes.length} bytes; the limit is ${SIZE_LIMITS.packageBytes}`) },
      )
    }
    const signature = sign(null, bytes, opts.privateKey).toString('base64')
    const signaturePath = `${tarballPath}.sig`
    await writeFile(signaturePath, `${signature}\n`)
    return {
      tarballPath,
      signaturePath,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      bytes: bytes.length,
      files: [...PACKAGE_FILES],
      fingerprint: keyFingerprint(createPublicKey(opts.privateKey)),
    }
  } finally {
    await rm(stage, { recursive: true, force: true })
  }
}

/** Verifies a detached signature (`.sig` text) over tarball bytes with a PEM public key. */
export function verifyPackageSignature(tarball: Buffer, signature: string, publicKeyPem: string): boolean {
  const key = createPublicKey(publicKeyPem)
  if (key.asymmetricKeyType !== 'ed25519') return false
  const sig = Buffer.from(signature.trim(), 'base64')
  return sig.length === 64 && verify(null, tarball, key, sig)
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}
