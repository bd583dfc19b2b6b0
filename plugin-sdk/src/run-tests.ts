/**
 * `trellis-plugin test`: runs a plugin's tests (`test/**\/*.test.ts`, node:test) with TypeScript
 * support, one file at a time (a single file in the one process), reported as TAP — each file
 * that uses `startPluginHarness` opens a tenant of its own in the warm kernel (started by the
 * first run, kept for the next), or, with `warm: false`, starts a kernel of its own.
 */
import { spawn } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { join, relative } from 'node:path'

/** Test files under `dir/test`, sorted. */
export async function findTestFiles(dir: string): Promise<string[]> {
  const entries = await readdir(join(dir, 'test'), { recursive: true, withFileTypes: true }).catch(() => [])
  return entries
    .filter((e) => e.isFile() && /\.test\.(ts|mts|js|mjs)$/.test(e.name))
    .map((e) => relative(dir, join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)))
    .sort()
}

/** Runs the tests; resolves to node's exit code (0 when every test passed). */
export async function runPluginTests(
  dir: string,
  options: { files?: string[]; warm?: boolean; stdout: (s: string) => void; stderr: (s: string) => void },
): Promise<{ code: number; files: string[] }> {
  const files = options.files?.length ? options.files : await findTestFiles(dir)
  if (files.length === 0) return { code: 0, files }
  const tsx = import.meta.resolve('tsx')
  // One file (the template's case) runs in the process itself: node's test runner would start a
  // process of its own for the file, a second Node and TypeScript loader for the same output (TAP,
  // its summary, exit code 1 on a failure). Several files keep a process each, one at a time.
  const run = files.length === 1 ? files : ['--test', '--test-concurrency=1', ...files]
  const child = spawn(process.execPath, ['--no-node-snapshot', '--import', tsx, '--test-reporter=tap', ...run], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    // `process`: a kernel per file; otherwise the caller's TRELLIS_DEV_KERNEL, by default the warm one.
    env: {
      ...process.env,
      TRELLIS_DEV_KERNEL: options.warm === false ? 'process' : (process.env.TRELLIS_DEV_KERNEL ?? 'warm'),
    },
  })
  child.stdout.on('data', (c: Buffer) => options.stdout(c.toString()))
  child.stderr.on('data', (c: Buffer) => options.stderr(c.toString()))
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)))
  return { code, files }
}
