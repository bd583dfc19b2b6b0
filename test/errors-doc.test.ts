import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { KRN, AUTH, EVT, PLG } from '../core/src/errors.js'
import { SBX } from '../sandbox/src/index.js'
import { WFL } from '../core/src/workflows/errors.js'
import { SDK } from '../plugin-sdk/src/index.js'
import { PUBLISH } from '../plugin-sdk/src/publish.js'
import { MKT } from '../marketplace/src/errors.js'
import { MKT_GOVERNANCE } from '../marketplace/src/governance/errors.js'
import { MET } from '../core/src/metrics/errors.js'
import { KB } from '../core/src/knowledge/errors.js'
import { AI } from '../core/src/ai/errors.js'
import { GOV } from '../core/src/governance/errors.js'
import { PUR } from '../plugins/procurement/src/errors.js'
import { RET } from '../plugins/returns/src/errors.js'

// docs/errors.md lists every code a user can meet; this keeps it and the catalogs in step.
const doc = readFileSync(fileURLToPath(new URL('../docs/errors.md', import.meta.url)), 'utf8')
// Each row is `| code | status | title | what to do |`; the fourth cell tells the caller what to do.
const documented = new Map<string, { status: number; title: string }>()
const whatToDo = new Map<string, string>()
for (const m of doc.matchAll(
  /^\|\s*`?([A-Z]+_ERR_[A-Z0-9_]+)`?\s*\|\s*(\d{3})\s*\|\s*([^|]+?)\s*\|(?:\s*([^|\n]*?)\s*\|)?/gm,
)) {
  documented.set(m[1]!, { status: Number(m[2]), title: m[3]! })
  whatToDo.set(m[1]!, m[4] ?? '')
}

const catalogs = { KRN, AUTH, SBX, EVT, PLG, WFL, SDK, PUBLISH, MKT, MKT_GOVERNANCE, MET, KB, AI, GOV, PUR, RET }

t.test('every code in the catalogs is documented with its status and title', async (t) => {
  for (const [name, catalog] of Object.entries(catalogs)) {
    for (const e of catalog.entries) {
      const d = documented.get(e.code)
      t.ok(d, `${name}: ${e.code} is in docs/errors.md`)
      if (d) t.same(d, { status: e.status, title: e.title }, e.code)
    }
  }
})

t.test('every code in the catalogs says what to do about it', async (t) => {
  for (const catalog of Object.values(catalogs)) {
    for (const e of catalog.entries) {
      if (!documented.has(e.code)) continue
      t.ok((whatToDo.get(e.code) ?? '').length >= 10, `${e.code} has a "what to do" cell in docs/errors.md`)
    }
  }
})

t.test('the doc lists no code that no catalog has', async (t) => {
  const known = new Set(Object.values(catalogs).flatMap((c) => c.entries.map((e) => e.code)))
  for (const code of documented.keys()) t.ok(known.has(code), `${code} exists`)
})
