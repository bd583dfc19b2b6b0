/**
 * The API description as a client generator sees it: every operation has a unique operationId,
 * every 4xx/5xx answer is the shared Problem schema, authenticated POSTs document
 * `Idempotency-Key`, shared schemas are components, `/docs` serves the same document — and
 * openapi-typescript turns it into types that accept a right call and reject a wrong one.
 */
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import openapiTS, { astToString } from 'openapi-typescript'
import { buildPlugin } from '@trellis/plugin-sdk'
import { DB_KINDS, startTestKernel } from '../core/test/helpers/test-kernel.js'
import { registerVersion } from '../core/test/helpers/plugin-versions.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const METHODS = ['get', 'put', 'post', 'delete', 'patch']

/** Type errors of `source` compiled against the generated `api.d.ts` in `dir`. */
function typeErrors(dir: string, name: string, source: string): string[] {
  const file = join(dir, name)
  writeFileSync(file, source)
  const program = ts.createProgram([file], {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
    types: [],
    baseUrl: dir,
    paths: { 'openapi-fetch': [join(ROOT, 'node_modules/openapi-fetch')] },
  })
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
}

t.test('the OpenAPI document', async (t) => {
  const k = await startTestKernel(t, DB_KINDS[0]!)
  // A plugin available on the marketplace: its routes are in the document like the kernel's.
  const dir = join(ROOT, 'core/test/fixtures/plugins/notes')
  const built = await buildPlugin({ dir, write: false })
  const manifest = JSON.parse(readFileSync(join(dir, 'trellis.plugin.json'), 'utf8'))
  await registerVersion(k, { manifest, code: built.code, sourceMap: built.sourceMap, sha256: built.sha256 })
  const res = await k.req('GET', '/openapi.json')
  t.equal(res.status, 200)
  const doc = res.body

  t.test('every operation has a unique operationId', async (t) => {
    const ids: string[] = []
    for (const [path, item] of Object.entries<any>(doc.paths))
      for (const method of METHODS) if (item[method]) ids.push(item[method].operationId ?? `${method} ${path} has none`)
    t.ok(ids.length > 50, `${ids.length} operations`)
    t.same(
      ids.filter((id) => !/^[a-z][A-Za-z0-9]*$/.test(id)),
      [],
    )
    t.equal(new Set(ids).size, ids.length, 'no two alike')
    t.equal(doc.paths['/v1/tasks/{id}'].get.operationId, 'getTasksById', 'derived from method and path')
    t.equal(doc.paths['/v1/auth/login'].post.operationId, 'postAuthLogin')
    t.equal(doc.paths['/v1/x/notes/notes'].post.operationId, 'postXNotesNotes', "a plugin's route too")
  })

  t.test('every 4xx and 5xx answer is the Problem schema', async (t) => {
    t.ok(doc.components.schemas.Problem.properties.code, 'Problem has a code')
    const wrong: string[] = []
    for (const [path, item] of Object.entries<any>(doc.paths))
      for (const method of METHODS) {
        const op = item[method]
        if (!op) continue
        const statuses = Object.keys(op.responses)
        if (!statuses.some((s) => s.startsWith('4'))) wrong.push(`${method} ${path}: no 4xx`)
        for (const s of statuses.filter((s) => /^[45]/.test(s)))
          if (op.responses[s].content?.['application/problem+json']?.schema?.$ref !== '#/components/schemas/Problem')
            wrong.push(`${method} ${path} ${s}`)
      }
    t.same(wrong, [])
    t.ok(doc.paths['/v1/tasks/{id}'].get.responses['404'], 'a path with an id documents 404')
    t.ok(doc.paths['/v1/tasks/{id}'].get.responses['401'], 'an authenticated operation documents 401')
    t.notOk(doc.paths['/v1/auth/login'].post.responses['401'], 'sign-in itself needs no credential')
    t.same(doc.paths['/healthz'].get.security, [], 'nor does a health probe')
    t.ok(doc.paths['/v1/x/notes/notes'].post.responses['404'], 'a plugin route answers 404 where it is not installed')
  })

  t.test('Idempotency-Key is documented on the POSTs that honour it', async (t) => {
    const idem = { $ref: '#/components/parameters/IdempotencyKey' }
    t.equal(doc.components.parameters.IdempotencyKey.name, 'Idempotency-Key')
    t.match(doc.paths['/v1/webhooks'].post.parameters, [idem])
    t.match(doc.paths['/v1/x/notes/notes'].post.parameters, [idem], "a plugin's POST route is a POST like any other")
    t.notMatch(doc.paths['/v1/auth/login'].post.parameters ?? [], [idem], 'not where nobody is signed in')
    t.notMatch(doc.paths['/v1/webhooks'].get.parameters ?? [], [idem], 'POST only')
  })

  t.test('schemas used more than once are components', async (t) => {
    const names = Object.keys(doc.components.schemas)
    t.ok(names.length > 5, names.join(', '))
    const text = JSON.stringify(doc.paths)
    for (const name of names.filter((n) => n !== 'Problem'))
      t.ok(
        text.includes(`"#/components/schemas/${name}"`) || JSON.stringify(doc.components).includes(`/${name}"`),
        name,
      )
    const task = doc.paths['/v1/tasks/{id}'].get.responses['200'].content['application/json'].schema
    t.same(task, doc.paths['/v1/tasks/{id}/claim'].post.responses['200'].content['application/json'].schema)
    t.ok(task.$ref, 'a task is one component')
  })

  t.test('/docs shows the same document', async (t) => {
    const page = await k.req('GET', '/docs/')
    t.equal(page.status, 200)
    const shown = await k.req('GET', '/docs/json')
    t.equal(shown.status, 200)
    t.same(shown.body, doc)
  })

  t.test('a client typed from the document accepts a right call and rejects a wrong one', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-openapi-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    writeFileSync(join(dir, 'api.d.ts'), astToString(await openapiTS(doc)))
    const client = (body: string) => `import createClient from 'openapi-fetch'
import type { components, operations, paths } from './api'
const api = createClient<paths>({ baseUrl: 'http://localhost:3000' })
export async function signIn() {
  const { data, error } = await api.POST('/v1/auth/login', { body: ${body} })
  const token: string | undefined = data?.accessToken
  const code: string | undefined = error?.code
  const sameBody: operations['postAuthLogin']['requestBody'] = { content: { 'application/json': ${body} } }
  const task: components['schemas']['Task'] | undefined = (
    await api.GET('/v1/tasks/{id}', { params: { path: { id: 'a-task-id' } } })
  ).data
  return { token, code, sameBody, task }
}
`
    t.same(typeErrors(dir, 'right.ts', client(`{ email: 'a@b.test', password: 'secret-password' }`)), [])
    const wrong = typeErrors(dir, 'wrong.ts', client(`{ email: 'a@b.test', passwort: 'secret-password' }`))
    t.ok(wrong.length > 0, 'a misspelt field does not type-check')
    t.match(wrong.join('\n'), /passwort|password/)
  })
})
