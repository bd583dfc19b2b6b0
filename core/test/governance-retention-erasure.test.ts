// Retention, legal hold, erasure of a data subject and personal values kept out of invocation
// records, on both databases: one kernel per database with three plugins holding personal data
// about contacts, installed in two tenants (the checks are in helpers/retention-suite.ts and
// helpers/erasure-suite.ts).
import t from 'tap'
import { DB_KINDS, startTestKernel } from './helpers/test-kernel.js'
import { registerSubjectPlugins, subjectTenants } from './helpers/subject-plugins.js'
import { retentionSuite } from './helpers/retention-suite.js'
import { erasureSuite } from './helpers/erasure-suite.js'

for (const kind of DB_KINDS)
  t.test(`retention, legal hold and erasure on ${kind}`, async (t) => {
    // The kernel's own retention job is off: the checks run it with their clock. 127.0.0.1 is
    // allow-listed for the erasure checks' webhook receiver.
    const k = await startTestKernel(t, kind, {
      plugins: { sandboxWorkers: 1 },
      retention: { intervalMs: 0 },
      events: { egressAllow: ['127.0.0.1'] },
    })
    await registerSubjectPlugins(k)
    const tenants = await subjectTenants(k)
    await t.test('retention and legal hold', (t) => retentionSuite(t, k, tenants))
    // After retention: its records, runs and erased audit payloads are there too, as in real life.
    await t.test('erasure of a data subject', (t) => erasureSuite(t, k, tenants))
  })
