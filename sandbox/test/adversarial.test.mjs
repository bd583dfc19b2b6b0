// `npx tap sandbox` (a folder argument) only collects .js/.mjs files, because the root .taprc
// turns tap's TypeScript plugin off; the root `include` (used by a bare `npx tap`) only matches
// *.test.ts. This shim lets either way run adversarial.test.ts exactly once (tsx is loaded by .taprc).
import './adversarial.test.ts'
