// The checkout's TypeScript loader (scripts/ts-loader, ADR 0115), run as `npm start` and the
// tests run it: on files outside the checkout, in a process of their own.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const LOADER = fileURLToPath(new URL('../scripts/ts-loader/register.mjs', import.meta.url))

const dir = mkdtempSync(join(tmpdir(), 'trellis-ts-loader-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

// Nothing of this process's options: tap adds its process-info hook to the children of a test
// through NODE_OPTIONS, and that hook turns source maps on, which the loader must do itself.
const run = (env: Record<string, string> = {}) =>
  spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, '--import', LOADER, join(dir, 'main.ts')], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH!, ...env },
  })

writeFileSync(
  join(dir, 'main.ts'),
  [
    "import { greet, fail } from './greet.js'",
    "import { plain } from './plain.js'",
    'const who: string = plain()',
    'console.log(greet(who))',
    "if (process.env.FAIL) fail('on purpose')",
    '',
  ].join('\n'),
)
writeFileSync(join(dir, 'plain.js'), "export const plain = () => 'plain js'\n")
const greet = (word: string) =>
  [
    // erased when transpiled: the lines below move up unless the stack is mapped back
    'interface Shape {',
    '  word: string',
    '  name: string',
    '}',
    `export const greet = (name: string): string => \`${word} \${name}\``,
    '',
    'export function fail(why: string): never {',
    '  throw new Error(why)', // line 8
    '}',
    '',
  ].join('\n')
writeFileSync(join(dir, 'greet.ts'), greet('hello'))

t.test('`./x.js` names x.ts when there is one, a real x.js otherwise; types are erased', async (t) => {
  const r = run()
  t.equal(r.status, 0, r.stderr)
  t.equal(r.stdout, 'hello plain js\n')
})

t.test('a stack trace points at the TypeScript line', async (t) => {
  const r = run({ FAIL: '1' })
  t.not(r.status, 0)
  t.match(r.stderr, 'Error: on purpose')
  t.match(r.stderr, `${join(dir, 'greet.ts')}:8:`)
})

t.test('a file changed since it was last transpiled runs as it is now', async (t) => {
  writeFileSync(join(dir, 'greet.ts'), greet('goodbye'))
  const r = run()
  t.equal(r.status, 0, r.stderr)
  t.equal(r.stdout, 'goodbye plain js\n', 'not the cached transpilation of the old text')
})
