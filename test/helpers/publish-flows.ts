// The flows fixture plugin (core/test/fixtures/plugins/flows) as a partner publishes it: built,
// packed and signed with the SDK, as a multipart upload for POST /v1/marketplace/plugins/…/versions.
import { createPrivateKey, randomBytes, type KeyObject } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildPlugin, generateSigningKeys, packPlugin } from '@trellis/plugin-sdk'

const FLOWS = fileURLToPath(new URL('../../core/test/fixtures/plugins/flows', import.meta.url))

export interface SigningKeys {
  privateKey: KeyObject
  publicKeyPem: string
}

/** A publisher's new Ed25519 key pair. */
export async function signingKeys(): Promise<SigningKeys> {
  const dir = await mkdtemp(join(tmpdir(), 'flows-keys-'))
  try {
    const keys = await generateSigningKeys(dir)
    return {
      privateKey: createPrivateKey(await readFile(keys.privateKeyPath)),
      publicKeyPem: await readFile(keys.publicKeyPath, 'utf8'),
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** The signed package and its signature as a multipart/form-data body. */
export async function publishSigned(keys: SigningKeys): Promise<{ payload: Buffer; contentType: string }> {
  const manifest = await readFile(join(FLOWS, 'trellis.plugin.json'), 'utf8')
  const { name, version } = JSON.parse(manifest) as { name: string; version: string }
  const built = await buildPlugin({ dir: FLOWS, write: false })
  const out = await mkdtemp(join(tmpdir(), 'flows-pack-'))
  try {
    const p = await packPlugin({
      name,
      version,
      manifest,
      bundle: built.code,
      sourceMap: built.sourceMap,
      outDir: out,
      privateKey: keys.privateKey,
    })
    const tgz = await readFile(p.tarballPath)
    const signature = (await readFile(p.signaturePath, 'utf8')).trim()
    const boundary = `----trellis-${randomBytes(8).toString('hex')}`
    const payload = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="signature"\r\n\r\n${signature}\r\n`),
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="package"; filename="package.tgz"\r\nContent-Type: application/gzip\r\n\r\n`,
      ),
      tgz,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ])
    return { payload, contentType: `multipart/form-data; boundary=${boundary}` }
  } finally {
    await rm(out, { recursive: true, force: true })
  }
}
