#!/usr/bin/env node
// Runs the TypeScript CLI from this checkout (through its loader, scripts/ts-loader) with the flags
// the kernel needs (isolated-vm wants --no-node-snapshot on Node 20), passing arguments, exit code
// and signals through. A packed @trellis/platform gets a launcher of its built JavaScript instead.
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const loader = fileURLToPath(new URL('../../scripts/ts-loader/register.mjs', import.meta.url))
const child = spawn(
  process.execPath,
  ['--no-node-snapshot', '--import', loader, join(here, '..', 'src', 'cli.ts'), ...process.argv.slice(2)],
  { stdio: 'inherit' },
)
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => (signal ? process.kill(process.pid, signal) : process.exit(code ?? 1)))
