import { createRequire } from 'node:module'
import type { FastifyServerOptions } from 'fastify'

// Fastify's own compilers (Ajv for requests, fast-json-stringify for responses), each route's
// schemas compiled on the route's first request instead of at start (ADR 0114): compiling all
// of the kernel's few hundred routes was about a second of every start, and a process serves
// only some of them. What each compiled function does is unchanged.

type RouteSchema = { schema: unknown; method?: string; url?: string; httpPart?: string; httpStatus?: string }
type Validate = ((data: unknown, ctx?: unknown) => unknown) & { errors?: unknown; schemaEnv?: unknown }
type Serialize = (data: unknown) => string
type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>
type Builder<F> = (externalSchemas: unknown, options: unknown) => (route: RouteSchema) => F

const require = createRequire(import.meta.url)
const ajvCompiler = require('@fastify/ajv-compiler') as () => Builder<Validate>
const fjsCompiler = require('@fastify/fast-json-stringify-compiler') as () => Builder<Serialize>

/** Compilations not made yet, for {@link compilePendingSchemas}. */
const pending = new Set<() => unknown>()

function lazily<F>(compile: () => F): () => F {
  let compiled: F | undefined
  const get = () => {
    if (compiled === undefined) {
      compiled = compile()
      pending.delete(get)
    }
    return compiled
  }
  pending.add(get)
  return get
}

const defaultValidators = ajvCompiler()
const defaultSerializers = fjsCompiler()

/** Fastify's `schemaController.compilersFactory`, compiling each schema on first use. */
export const lazyCompilers = {
  buildValidator(externalSchemas: unknown, options: unknown) {
    const compiler = defaultValidators(externalSchemas, options)
    return (route: RouteSchema): Validate => {
      const validate = lazily(() => compiler(route))
      // Fastify hands Ajv the request as the parent (Ajv coerces and defaults the root value
      // only so): `schemaEnv` tells it to, as Ajv's own compiled functions do.
      const run: Validate = (data, ctx) => {
        const v = validate()
        const ok = v(data, ctx)
        run.errors = v.errors
        return ok
      }
      run.schemaEnv = true
      return run
    }
  },
  buildSerializer(externalSchemas: unknown, options: unknown) {
    const compiler = defaultSerializers(externalSchemas, options)
    return (route: RouteSchema): Serialize => {
      const serialize = lazily(() => compiler(route))
      return (data) => serialize()(data)
    }
  },
} as unknown as CompilersFactory

/** Compiles every schema not compiled yet (a test proves every route's schemas compile). */
export function compilePendingSchemas(): number {
  const all = [...pending]
  for (const compile of all) compile()
  return all.length
}
