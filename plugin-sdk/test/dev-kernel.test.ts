// The SDK reaches the kernel only through @trellis/platform, its optional peer dependency: a
// missing or outdated platform is a typed SDK error that says what to install.
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { loadDevKernel, SDK } from '../src/index.js'

t.test('the installed platform gives startDevKernel', async (t) => {
  t.type(await loadDevKernel(), 'function')
})

t.test('a missing platform is SDK_ERR_KERNEL_NOT_INSTALLED, naming the package', async (t) => {
  const missing = Object.assign(new Error("Cannot find package '@trellis/platform'"), { code: 'ERR_MODULE_NOT_FOUND' })
  const err = await loadDevKernel(() => Promise.reject(missing)).catch((e: unknown) => e)
  t.ok(SDK.KERNEL_NOT_INSTALLED.is(err))
  t.match((err as Error).message, /npm install --save-dev @trellis\/platform/)
  t.equal((err as Error).cause, missing, 'the import failure is kept as the cause')
})

t.test('a platform without startDevKernel is the same error; other failures pass through', async (t) => {
  const old = await loadDevKernel(async () => ({})).catch((e: unknown) => e)
  t.ok(SDK.KERNEL_NOT_INSTALLED.is(old))
  t.match((old as Error).message, /older than this SDK/)
  const broken = new SyntaxError('a bug in the platform')
  t.equal(await loadDevKernel(() => Promise.reject(broken)).catch((e: unknown) => e), broken)
})

t.test('the SDK declares the platform as an optional peer, and never the kernel', async (t) => {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'))
  t.same(pkg.peerDependenciesMeta['@trellis/platform'], { optional: true })
  t.ok(pkg.peerDependencies['@trellis/platform'])
  for (const field of ['dependencies', 'peerDependencies', 'devDependencies'])
    t.notOk(pkg[field]?.['@trellis/core'], `no @trellis/core in ${field}`)
})
