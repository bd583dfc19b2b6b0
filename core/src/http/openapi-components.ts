/**
 * Object schemas that appear more than once in the OpenAPI document become components under
 * `#/components/schemas` and are referred to by `$ref`. The routes keep their TypeBox schemas
 * inline (that is what Fastify validates with); only the published document is reshaped. Each
 * component is named for where it is used (the resource of its path, the property holding it),
 * the same on every start.
 */
type Json = Record<string, unknown>
type Doc = {
  paths?: Record<string, Record<string, unknown>>
  components?: Json & { schemas?: Record<string, unknown> }
}

const REF = '#/components/schemas/'

/** Keys sorted at every level: equal schemas give equal strings. */
function keyOf(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v as Json)
            .sort()
            .map((k) => [k, (v as Json)[k]]),
        )
      : v,
  )
}

const isObjectSchema = (s: unknown): s is Json =>
  !!s &&
  typeof s === 'object' &&
  !Array.isArray(s) &&
  (s as Json).type === 'object' &&
  Object.keys(((s as Json).properties as Json | undefined) ?? {}).length >= 2

const pascal = (s: string) =>
  s
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('')
const singular = (s: string) => (s.endsWith('ies') ? `${s.slice(0, -3)}y` : s.replace(/(?<!s)s$/, ''))

/** `/v1/tasks/{id}/claim` → `Task`: the collection the operation is about. */
function resourceOf(path: string): string {
  const segments = path.split('/').filter((s) => s !== '' && s !== 'v1')
  const lastParam = segments.findLastIndex((s) => s.startsWith('{'))
  const name = lastParam > 0 ? segments[lastParam - 1]! : (segments[segments.length - 1] ?? 'root')
  return pascal(singular(name))
}

/** Each place a schema sits in the document: the holder and key to replace it at, and a name hint. */
interface Site {
  holder: Json | unknown[]
  key: string | number
  hint: string
}

function* sites(holder: Json | unknown[], key: string | number, hint: string): Generator<Site> {
  const schema = (holder as Json)[key as string]
  if (!schema || typeof schema !== 'object' || Array.isArray(schema) || '$ref' in (schema as Json)) return
  const s = schema as Json
  const props = s.properties as Json | undefined
  const page = props && 'items' in props && 'nextCursor' in props
  yield { holder, key, hint: page ? `${hint}Page` : hint }
  for (const [name, child] of Object.entries(props ?? {})) {
    if (child && typeof child === 'object' && (child as Json).type === 'array')
      // A list's `items` are what the path is about (`/v1/roles` → `Role`).
      yield* sites(child as Json, 'items', name === 'items' ? hint : pascal(singular(name)))
    else yield* sites(props!, name, pascal(name))
  }
  if (s.type === 'array') yield* sites(s, 'items', hint)
  for (const combiner of ['anyOf', 'oneOf', 'allOf'])
    if (Array.isArray(s[combiner]))
      for (let i = 0; i < (s[combiner] as unknown[]).length; i++) yield* sites(s[combiner] as unknown[], i, hint)
}

function* documentSites(doc: Doc): Generator<Site> {
  for (const path of Object.keys(doc.paths ?? {}).sort()) {
    const resource = resourceOf(path)
    for (const [method, op] of Object.entries(doc.paths![path]!)) {
      if (!op || typeof op !== 'object') continue
      const o = op as { requestBody?: { content?: Json }; responses?: Record<string, { content?: Json }> }
      for (const media of Object.values(o.requestBody?.content ?? {}))
        yield* sites(media as Json, 'schema', `${pascal(method)}${resource}Body`)
      for (const [status, answer] of Object.entries(o.responses ?? {}))
        for (const media of Object.values(answer?.content ?? {}))
          yield* sites(media as Json, 'schema', status.startsWith('2') ? resource : `${resource}${status}`)
    }
  }
  // Inside components: their parts, never a component itself.
  for (const [name, schema] of Object.entries(doc.components?.schemas ?? {}))
    if (schema && typeof schema === 'object') {
      const [, ...inner] = [...sites({ schema }, 'schema', name)]
      yield* inner
    }
}

/** The document with every object schema used twice or more moved to components (changes `doc`). */
export function hoistSharedSchemas<D extends Doc>(doc: D): D {
  const schemas: Record<string, unknown> = { ...doc.components?.schemas }
  doc.components = { ...doc.components, schemas }
  const known = new Map<string, string>()
  for (const [name, schema] of Object.entries(schemas)) known.set(keyOf(stripId(schema)), name)
  for (let round = 0; round < 500; round++) {
    const found = new Map<string, Site[]>()
    for (const site of documentSites(doc)) {
      const schema = (site.holder as Json)[site.key as string]
      if (!isObjectSchema(schema)) continue
      const key = keyOf(schema)
      found.set(key, [...(found.get(key) ?? []), site])
    }
    // An existing component first; otherwise the largest schema used more than once.
    let best: [string, Site[]] | undefined
    for (const entry of found)
      if (known.has(entry[0]) || entry[1].length > 1) if (!best || rank(entry, known) > rank(best, known)) best = entry
    if (!best) break
    const [key, at] = best
    let name = known.get(key)
    if (!name) {
      const hint = mostCommon(at.map((s) => s.hint))
      name = hint
      for (let n = 2; name in schemas; n++) name = `${hint}${n}`
      schemas[name] = (at[0]!.holder as Json)[at[0]!.key as string]
      known.set(key, name)
    }
    for (const site of at) (site.holder as Json)[site.key as string] = { $ref: `${REF}${name}` }
  }
  return doc
}

function rank([key, at]: [string, Site[]], known: Map<string, string>): number {
  return (known.has(key) ? 1e9 : 0) + key.length * 10 + at.length
}

function mostCommon(hints: string[]): string {
  const counts = new Map<string, number>()
  for (const h of hints) counts.set(h, (counts.get(h) ?? 0) + 1)
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0]
}

function stripId(schema: unknown): unknown {
  if (!schema || typeof schema !== 'object') return schema
  const { $id: _id, ...rest } = schema as Json
  return rest
}
