// Publishing on PGlite (the embedded default); publishing-postgres.test.ts runs the same suite
// on PostgreSQL. See fixtures/publishing-suite.ts.
import t from 'tap'
import { DB_KINDS } from '../../core/test/helpers/test-kernel.js'
import { publishingSuite } from './fixtures/publishing-suite.js'

if (DB_KINDS.includes('pglite')) t.test('publishing (pglite)', (t) => publishingSuite(t, 'pglite'))
