#!/usr/bin/env node
// Runs the TypeScript CLI under tsx with the flags the kernel needs (isolated-vm wants
// --no-node-snapshot on Node 20), passing arguments, exit code and signals through.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const tsx = createRequire(import.meta.url).resolve('tsx')
const child = spawn(
  process.execPath,
  ['--no-node-snapshot', '--import', tsx, join(here, '..', 'src', 'cli.ts'), ...process.argv.slice(2)],
  { stdio: 'inherit' },
)
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => (signal ? process.kill(process.pid, signal) : process.exit(code ?? 1)))
