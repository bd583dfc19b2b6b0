// Publishing on PostgreSQL; publishing.test.ts runs the same suite on PGlite.
import t from 'tap'
import { DB_KINDS } from '../../core/test/helpers/test-kernel.js'
import { publishingSuite } from './fixtures/publishing-suite.js'

if (DB_KINDS.includes('postgres')) t.test('publishing (postgres)', (t) => publishingSuite(t, 'postgres'))
