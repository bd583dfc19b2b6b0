// `npm run bench -- dev-loop`: the plugin developer's loop, in a plugin created by
// `trellis-plugin create` in an empty directory (its two Trellis packages linked from this
// checkout, as `npm install` of the template's `file:` dependencies links them), through the real
// launcher: `trellis-plugin test` (the template's 4 tests) and `trellis-plugin dev` until it
// prints "ready", each on the warm kernel (ADR 0092) and with `--no-warm` (a kernel started by
// the run), in alternating rounds. Every run is checked: the tests pass (`# fail 0`), and the dev
// server's route answers 201. Wall time and CPU time: the run's processes (reaped children of
// this one) plus what the warm kernel's process tree spent meanwhile. Then where a warm run's time
// goes, phase by phase, each measured alone on the warm kernel (see `phases`).
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildPlugin } from '../plugin-sdk/src/build.js'
import { templateFiles } from '../plugin-sdk/src/cli/template.js'
import { listWarmKernels, openWarmTenant, stopWarmKernels } from '../plugin-sdk/src/dev-warm.js'
import { loadAverage, median } from './_harness.js'
import { treeCpuMs } from './_proc-cpu.js'

const ROUNDS = Number(process.env.BENCH_DEV_ROUNDS ?? 2)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(ROOT, 'plugin-sdk', 'bin', 'trellis-plugin.js')

/** CPU of this process's reaped children (utime + stime of the finished ones), in ms. */
async function childrenCpuMs(): Promise<number> {
  const rest = (await readFile('/proc/self/stat', 'utf8')).split(') ')[1]!.split(' ')
  return (Number(rest[13]) + Number(rest[14])) * 10
}

interface Sample {
  wallMs: number
  cpuMs: number
}

async function measure(stateDir: string, fn: () => Promise<void>): Promise<Sample> {
  const daemons = (await listWarmKernels(stateDir)).map((k) => k.pid)
  const cpu0 = (await childrenCpuMs()) + treeCpuMs(daemons)
  const t0 = performance.now()
  await fn()
  const wallMs = performance.now() - t0
  const after = (await listWarmKernels(stateDir)).map((k) => k.pid)
  const cpuMs = (await childrenCpuMs()) + treeCpuMs([...new Set([...daemons, ...after])]) - cpu0
  return { wallMs, cpuMs }
}

function runTests(dir: string, env: NodeJS.ProcessEnv, warm: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'test', ...(warm ? [] : ['--no-warm'])], { cwd: dir, env })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    child.on('close', (code) =>
      code === 0 && /# pass 4/.test(out) && /# fail 0/.test(out)
        ? resolve()
        : reject(new Error(`trellis-plugin test${warm ? '' : ' --no-warm'} failed (${code}):\n${out}`)),
    )
  })
}

/** `dev` until it prints "ready", its route checked for a 201 after the clock stops; then stopped. */
async function runDev(dir: string, env: NodeJS.ProcessEnv, warm: boolean): Promise<{ readyMs: number }> {
  const t0 = performance.now()
  const child = spawn(process.execPath, [BIN, 'dev', '--port', '0', ...(warm ? [] : ['--no-warm'])], { cwd: dir, env })
  let out = ''
  const readyMs = await new Promise<number>((resolve, reject) => {
    const seen = (d: Buffer) => {
      out += d
      if (/ready in/.test(out)) resolve(performance.now() - t0)
    }
    child.stdout.on('data', seen)
    child.stderr.on('data', seen)
    child.on('close', (code) => reject(new Error(`dev exited (${code}) before it was ready:\n${out}`)))
  })
  const head = /trellis dev: (http:\/\/\S+?)(\/v1\/x\/\S+)/.exec(out)!
  const token = /Bearer (\S+?)"/.exec(out)![1]
  const res = await fetch(`${head[1]}${head[2]}/items`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bolt', qty: 1 }),
  })
  if (res.status !== 201) throw new Error(`dev${warm ? '' : ' --no-warm'}: POST /items answered ${res.status}`)
  child.removeAllListeners('close')
  await new Promise<void>((resolve) => {
    child.on('close', () => resolve())
    child.kill('SIGINT')
  })
  return { readyMs }
}

function spawned(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d) => (err += d))
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${args.join(' ')} (${code}): ${err}`))))
  })
}

/** Wall and CPU of `fn` run in this process: this process and its children, and the warm kernel's tree. */
async function inProcess(stateDir: string, fn: () => Promise<void>): Promise<Sample> {
  const roots = [process.pid, ...(await listWarmKernels(stateDir)).map((k) => k.pid)]
  const cpu0 = treeCpuMs(roots)
  const t0 = performance.now()
  await fn()
  return { wallMs: performance.now() - t0, cpuMs: treeCpuMs(roots) - cpu0 }
}

/**
 * The parts of a warm `trellis-plugin test` run, each alone and `rounds` times (medians): the
 * launcher and CLI up to parsing its arguments, a test process loading the harness, the build,
 * opening a tenant in the warm kernel, installing the bundle there, and letting the tenant go.
 */
async function phases(dir: string, stateDir: string, env: NodeJS.ProcessEnv, rounds: number): Promise<void> {
  const rows: Array<[string, Sample[]]> = [
    ['CLI start (launcher, tsx, commands): --version', []],
    ['test process start (node, tsx, the harness module)', []],
    ['bundle (esbuild)', []],
    ['open a tenant in the warm kernel', []],
    ['install the bundle (same code: the version is reused)', []],
    ['let the tenant go', []],
  ]
  const harness = ['--no-node-snapshot', '--import', import.meta.resolve('tsx'), '--input-type=module', '-e']
  for (let i = 0; i < rounds; i++) {
    rows[0]![1].push(await measure(stateDir, () => spawned([BIN, '--version'], dir, env)))
    rows[1]![1].push(
      await measure(stateDir, () => spawned([...harness, "await import('@trellis/plugin-sdk/testing')"], dir, env)),
    )
    let built: Awaited<ReturnType<typeof buildPlugin>> | undefined
    rows[2]![1].push(
      await inProcess(stateDir, async () => {
        built = await buildPlugin({ dir, write: false })
      }),
    )
    let tenant: Awaited<ReturnType<typeof openWarmTenant>> | undefined
    rows[3]![1].push(
      await inProcess(stateDir, async () => {
        tenant = await openWarmTenant({ stateDir })
      }),
    )
    const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
    rows[4]![1].push(
      await inProcess(stateDir, async () => {
        await tenant!.install({ manifest, code: built!.code, sourceMap: built!.sourceMap })
      }),
    )
    rows[5]![1].push(await inProcess(stateDir, () => tenant!.close()))
  }
  console.log(`phases of a warm run, medians of ${rounds} (${loadAverage()}):`)
  for (const [name, s] of rows) console.log(`  ${name.padEnd(56)} ${fmt(s, 'wallMs')} wall, ${fmt(s, 'cpuMs')} CPU`)
}

const fmt = (s: Sample[], key: keyof Sample) => `${(median(s.map((x) => x[key])) / 1000).toFixed(1)} s`

export async function run(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'trellis-bench-devloop-'))
  const stateDir = join(root, 'dev-kernel')
  const env: NodeJS.ProcessEnv = { ...process.env, TRELLIS_DEV_KERNEL_DIR: stateDir }
  delete env.TRELLIS_DEV_KERNEL
  try {
    const dir = join(root, 'hello')
    for (const [file, text] of Object.entries(templateFiles({ name: '@acme/hello', description: 'Bench' }))) {
      await mkdir(dirname(join(dir, file)), { recursive: true })
      await writeFile(join(dir, file), text)
    }
    await mkdir(join(dir, 'node_modules', '@trellis'), { recursive: true })
    for (const pkg of ['plugin-sdk', 'platform'])
      await symlink(join(ROOT, pkg), join(dir, 'node_modules', '@trellis', pkg))

    const first = await measure(stateDir, () => runTests(dir, env, true))
    console.log(
      `first warm run (starts the warm kernel): test ${(first.wallMs / 1000).toFixed(1)} s wall, ${(first.cpuMs / 1000).toFixed(1)} s CPU`,
    )
    await phases(dir, stateDir, env, Math.max(3, ROUNDS))
    const test: Record<'warm' | 'cold', Sample[]> = { warm: [], cold: [] }
    const dev: Record<'warm' | 'cold', Sample[]> = { warm: [], cold: [] }
    for (let round = 0; round < ROUNDS; round++) {
      for (const warm of round % 2 ? [true, false] : [false, true]) {
        const side = warm ? 'warm' : 'cold'
        test[side].push(await measure(stateDir, () => runTests(dir, env, warm)))
        let readyMs = 0
        const d = await measure(stateDir, async () => {
          readyMs = (await runDev(dir, env, warm)).readyMs
        })
        // Ready time is up to the "ready" line; CPU is the whole session (start, one request, stop).
        dev[side].push({ wallMs: readyMs, cpuMs: d.cpuMs })
        const last = (s: Sample[]) =>
          `${(s.at(-1)!.wallMs / 1000).toFixed(1)} s (CPU ${(s.at(-1)!.cpuMs / 1000).toFixed(1)} s)`
        console.log(
          `  round ${round + 1} ${warm ? 'warm     ' : '--no-warm'}: test ${last(test[side])}, dev ready ${last(dev[side])}`,
        )
      }
    }
    const ratio = (s: Record<'warm' | 'cold', Sample[]>, key: keyof Sample) =>
      (median(s.cold.map((x) => x[key])) / median(s.warm.map((x) => x[key]))).toFixed(1)
    console.log(`medians of ${ROUNDS} rounds each side; every test run passed 4 of 4, every dev route answered 201`)
    console.log(
      `trellis-plugin test (4 tests)   --no-warm ${fmt(test.cold, 'wallMs')} wall, ${fmt(test.cold, 'cpuMs')} CPU   warm ${fmt(test.warm, 'wallMs')} wall, ${fmt(test.warm, 'cpuMs')} CPU   (${ratio(test, 'wallMs')}x wall, ${ratio(test, 'cpuMs')}x CPU; ${loadAverage()})`,
    )
    console.log(
      `trellis-plugin dev to ready     --no-warm ${fmt(dev.cold, 'wallMs')} wall, ${fmt(dev.cold, 'cpuMs')} CPU   warm ${fmt(dev.warm, 'wallMs')} wall, ${fmt(dev.warm, 'cpuMs')} CPU   (${ratio(dev, 'wallMs')}x wall, ${ratio(dev, 'cpuMs')}x CPU; ${loadAverage()})`,
    )
  } finally {
    await stopWarmKernels(stateDir)
    await rm(root, { recursive: true, force: true })
  }
}
