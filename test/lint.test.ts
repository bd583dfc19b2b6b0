// The repository's one linter and formatter (Biome, configured in biome.json) must pass:
// CI runs `npm test`, so this is where a badly formatted or linted file is caught.
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const biome = createRequire(import.meta.url).resolve('@biomejs/biome/bin/biome')

t.test('biome check passes on the whole tree', async (t) => {
  const run = spawnSync(process.execPath, [biome, 'check', '--reporter=summary', '.'], { cwd: root, encoding: 'utf8' })
  t.equal(run.status, 0, `npm run lint reports problems (fix with npm run format):\n${run.stdout}${run.stderr}`)
})
