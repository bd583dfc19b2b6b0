// `npm run bench -- <name> [more names]` runs bench/<name>.ts, each of which exports `run()`
// and prints its figures as ratios against a baseline measured in the same run.
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadAverage } from './_harness.js'

const here = dirname(fileURLToPath(import.meta.url))
const available = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .map((f) => f.replace(/\.ts$/, ''))
  .filter((n) => !n.includes('.'))

const names = process.argv.slice(2)
if (names.length === 0 || names.some((n) => !available.includes(n))) {
  console.error(`usage: npm run bench -- <${available.join('|')}> [...]`)
  process.exit(2)
}
for (const name of names) {
  const mod = (await import(join(here, `${name}.ts`))) as { run: () => Promise<void> }
  console.log(`\n== bench: ${name} (${loadAverage()} at the start; 2 cores)`)
  await mod.run()
  console.log(`== ${name} done (${loadAverage()} at the end)`)
}
process.exit(process.exitCode ?? 0)
