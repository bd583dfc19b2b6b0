// The SDK's boundaries: it depends on nothing of ours, and what a bundle may contain stays
// free of Node APIs and of the Node-only half of the SDK. The one exception is the dev tooling's
// `import('@trellis/platform')` (an optional peer: `trellis-plugin dev/test` get a kernel from the
// composition root); test/boundaries.test.ts checks every package, dynamic imports included.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const src = fileURLToPath(new URL('../src', import.meta.url))
const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  )

t.test('plugin-sdk imports no other Trellis package', async (t) => {
  for (const file of files(src)) {
    const imports = [...readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((m) => m[1]!)
    const peer = relative(src, file) === 'dev-kernel.ts' ? ['@trellis/platform'] : []
    const ours = imports.filter(
      (i) =>
        (i.startsWith('@trellis/') && !i.startsWith('@trellis/plugin-sdk') && !peer.includes(i)) ||
        /^(\.\.\/){2,}/.test(i),
    )
    t.same(ours, [], relative(src, file))
  }
})

t.test('the isolate-safe entry bundles without Node built-ins or the Node-only modules', async (t) => {
  const out = await build({
    entryPoints: [join(src, 'plugin.ts')],
    bundle: true,
    platform: 'neutral',
    format: 'cjs',
    write: false,
    metafile: true,
    logLevel: 'silent',
  })
  const inputs = Object.keys(out.metafile.inputs).map((p) => p.replace(/^.*plugin-sdk\/src\//, ''))
  t.same(inputs.sort(), [
    'agent-step.ts',
    'capabilities.ts',
    'define-plugin.ts',
    'errors.ts',
    'plugin.ts',
    'protocol.ts',
    'runtime.ts',
    'sdk-errors.ts',
    'workflow.ts',
  ])
})
