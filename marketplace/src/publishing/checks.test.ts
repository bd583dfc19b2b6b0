import t from 'tap'
import { capabilityDiff, staticScan } from './checks.js'
import { unsafePathReason } from './unpack.js'

t.test('static scan: dynamic code generation, not look-alikes', async (t) => {
  const code = [
    'const a = eval("1")',
    'const b = new Function("return 1")',
    'const c = Function("return 2")',
    'const d = import("./x.js")',
    'const e = ({}).constructor.constructor("return this")()',
    'setTimeout("alert(1)", 1)',
    'WebAssembly.instantiate(bytes)',
    // look-alikes
    'obj.eval(1); myFunction(2); retrieval(3); const x = { Function: 1 }; setTimeout(() => 1, 1); reimport(4)',
  ].join('\n')
  const { findings } = staticScan(code)
  t.same(
    findings.map((f) => [f.rule, f.line]),
    [
      ['eval', 1],
      ['new-function', 2],
      ['function-constructor', 3],
      ['dynamic-import', 4],
      ['constructor-constructor', 5],
      ['string-timer', 6],
      ['webassembly', 7],
    ],
  )
  t.equal(findings[0]!.column, 11)
  t.same(staticScan('export const ok = 1').findings, [])
})

t.test('static scan stops at 50 findings', async (t) => {
  const r = staticScan('eval(1);'.repeat(80))
  t.equal(r.findings.length, 50)
  t.equal(r.truncated, true)
})

t.test('capability diff', async (t) => {
  const prev = { capabilities: ['data', 'secrets'], permissions: [{ name: 'a.read', description: '' }] }
  const next = { capabilities: ['data', 'ai:complete'], permissions: [{ name: 'a.write', description: '' }] }
  t.same(capabilityDiff(next, prev), {
    capabilities: { added: ['ai:complete'], removed: ['secrets'] },
    permissions: { added: ['a.write'], removed: ['a.read'] },
  })
  t.same(capabilityDiff(next, undefined), {
    capabilities: { added: ['ai:complete', 'data'], removed: [] },
    permissions: { added: ['a.write'], removed: [] },
  })
})

t.test('unsafe paths', async (t) => {
  for (const p of ['../x', 'a/../../x', '/etc/passwd', '\\\\server\\share', 'C:/x', 'a\\..\\x', 'a\0b', '', '..'])
    t.ok(unsafePathReason(p), JSON.stringify(p))
  for (const p of ['trellis.plugin.json', 'dist/plugin.js', 'a..b', '.hidden']) t.notOk(unsafePathReason(p), p)
})
