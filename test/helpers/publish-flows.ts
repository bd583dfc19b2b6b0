// The flows fixture plugin (core/test/fixtures/plugins/flows) as a partner publishes it: built,
// packed and signed with the SDK, as a multipart upload for POST /v1/marketplace/plugins/…/versions.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildPlugin, packPlugin } from '@trellis/plugin-sdk'
import { multipart, type Signer } from '../../marketplace/test/fixtures/packages.js'

export { newSigner as signingKeys } from '../../marketplace/test/fixtures/packages.js'

const FLOWS = fileURLToPath(new URL('../../core/test/fixtures/plugins/flows', import.meta.url))

/** The signed package and its signature as a multipart/form-data body. */
export async function publishSigned(keys: Signer): Promise<{ payload: Buffer; contentType: string }> {
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
    return multipart([
      { name: 'signature', value: (await readFile(p.signaturePath, 'utf8')).trim() },
      { name: 'package', filename: 'package.tgz', content: await readFile(p.tarballPath) },
    ])
  } finally {
    await rm(out, { recursive: true, force: true })
  }
}
