// A cold start: the bundle's probe (its top level evaluated at load on the probation worker) is
// the context of the bundle's first new tenant there, and of no other; every other context runs
// the top level itself, on the worker's thread under the invocation's CPU limit. A source map
// stays with the parent unless it is long; either way a plugin's stack is in its own sources.
import t from 'tap'
import { SBX, Sandbox } from '../src/index.js'
import type { PluginBundle } from '../src/index.js'
import { bodiesBundle, makeBundle, mappedBuild } from './fixtures/bundles.js'
import { call, rejection, until } from './fixtures/harness.js'

/** A bundle whose top level runs `topLevel` and stamps when it ran; `look` reports the stamp and who called. */
function stamped(id: string, topLevel = ''): PluginBundle {
  const b = bodiesBundle(id, {
    look: 'seen.push(input); return { loadedAt, seen: [...seen] }',
    echo: 'return input',
  })
  const code = b.code.replace(
    'const handlers = {',
    `${topLevel}\nconst loadedAt = Date.now()\nconst seen = []\nconst handlers = {`,
  )
  return makeBundle(id, code, b.version)
}

type Look = { loadedAt: number; seen: string[] }
const look = async (sandbox: Sandbox, b: PluginBundle, tenant: string, memoryMb?: number) =>
  (await call(sandbox, b, 'look', { tenant, input: tenant, limits: memoryMb ? { memoryMb } : undefined }))
    .output as Look

t.test("a bundle's probe becomes its first new tenant's context, and no other tenant's", async (t) => {
  const sandbox = await Sandbox.create({ workers: 1 })
  t.teardown(() => sandbox.close())
  const b = stamped('@acme/stamped')
  await sandbox.load(b)
  const loaded = Date.now()
  // (a context whose top level runs from now on stamps a later time than the load's end)
  await until(() => Date.now() > loaded)
  const first = await look(sandbox, b, 'first')
  t.ok(first.loadedAt <= loaded, 'the first new tenant runs where the probe evaluated the bundle during load()')
  t.same(first.seen, ['first'])
  const second = await look(sandbox, b, 'second')
  t.ok(second.loadedAt > loaded, "the next tenant's context evaluates the bundle itself")
  t.same(second.seen, ['second'], 'and holds nothing of the first')
  t.same((await look(sandbox, b, 'first')).seen, ['first', 'first'], "the first tenant's context stays its own")
})

t.test(
  'a tenant with another memory limit, or a lower CPU limit than the probe took, evaluates the bundle itself',
  async (t) => {
    const sandbox = await Sandbox.create({ workers: 1, quietWorkers: true })
    t.teardown(() => sandbox.close())
    const b = stamped('@acme/stamped-limits')
    await sandbox.load(b)
    const loaded = Date.now()
    await until(() => Date.now() > loaded)
    t.ok((await look(sandbox, b, 'big', 128)).loadedAt > loaded, 'an isolate with another limit is not the probe')
    // A top level that takes ~50 ms: a tenant allowed 5 ms of CPU cannot have run it.
    const slow = stamped('@acme/slow-top-level', 'const started = Date.now(); while (Date.now() - started < 50) {}')
    await sandbox.load(slow)
    const err = await rejection(call(sandbox, slow, 'echo', { tenant: 'frugal', input: 1, limits: { cpuMs: 5 } }))
    t.equal(err.code, SBX.TIMEOUT.code)
  },
)

t.test("a tenant context's top level that never ends is stopped by the CPU limit; the worker serves on", async (t) => {
  const sandbox = await Sandbox.create({ workers: 1, quietWorkers: true })
  t.teardown(() => sandbox.close())
  // Its top level loops forever once armed: after the probe evaluated it at load.
  const armedAt = Date.now() + 1_000
  const b = stamped('@evil/armed-top-level', `if (Date.now() > ${armedAt}) for (;;) {}`)
  await sandbox.load(b)
  const [before] = (await sandbox.stats()).workers
  await until(() => Date.now() > armedAt)
  t.same((await look(sandbox, b, 'first')).seen, ['first'], 'the probe, evaluated before, serves the first tenant')
  const err = await rejection(call(sandbox, b, 'echo', { tenant: 'second', input: 1, limits: { cpuMs: 100 } }))
  t.equal(err.code, SBX.TIMEOUT.code)
  t.equal((err.details as { limit?: string }).limit, 'cpu')
  const after = await sandbox.stats()
  t.equal(after.workers[0]?.pid, before?.pid, 'the same worker')
  t.equal(after.restarts, 0)
  t.same((await look(sandbox, b, 'first')).seen, ['first', 'first'], 'and it serves the first tenant as before')
})

t.test(
  "a plugin error's stack is in its sources whether the map stays with the parent or, a long one, goes to the worker",
  async (t) => {
    const sandbox = await Sandbox.create({ workers: 1 })
    t.teardown(() => sandbox.close())
    const { js, map } = await mappedBuild(
      [
        'export const entries = { route: ["fail"] }',
        'export async function invoke() {',
        '  throw new Error("no")',
        '}',
      ].join('\n'),
    )
    // The same map with 600 KiB of sources' text it does not need for mapping.
    const long = JSON.stringify({ ...JSON.parse(map), sourcesContent: ['x'.repeat(600 * 1024)] })
    for (const [version, sourceMap] of [
      ['1.0.0', map],
      ['2.0.0', long],
    ] as const) {
      const b = makeBundle('@acme/mapped-cold', js, version, sourceMap)
      await sandbox.load(b)
      const err = await rejection(call(sandbox, b, 'fail', { tenant: `mapped-${version}` }))
      t.equal(err.code, SBX.PLUGIN_ERROR.code)
      t.match(err.stack, /at invoke \(.*src\/plugin\.ts:3:9\)/, `map of ${sourceMap.length} characters`)
    }
  },
)
