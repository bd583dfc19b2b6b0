/**
 * Manifest validation and the capability lint: the checks `trellis-plugin validate` runs, and
 * that the marketplace and the kernel reuse. Node-only (not bundled into plugins).
 */
import { createRequire } from 'node:module'
import type { Ajv2020 } from 'ajv/dist/2020.js'
import type { ErrorObject } from 'ajv'
import manifestSchemaJson from '../schema/manifest.schema.json' with { type: 'json' }
import { parseCapability } from './capabilities.js'
import { classificationProblems } from './classification.js'
import type { JsonSchema, PluginManifest } from './manifest-types.js'
import { HOST_OP_SCHEMAS } from './host-op-schemas.js'
import { type SchemaProblem, schemaProblemOf } from './schema-problems.js'
import type { HostOp } from './protocol.js'

/** The published JSON Schema of `trellis.plugin.json` (also at `@trellis/plugin-sdk/schema/manifest.schema.json`). */
export const manifestSchema: Readonly<Record<string, unknown>> = manifestSchemaJson

/** Size limits the marketplace enforces (bytes). */
export const SIZE_LIMITS = Object.freeze({
  /** `trellis.plugin.json`. */
  manifestBytes: 256 * 1024,
  /** `dist/plugin.js`. */
  bundleBytes: 5 * 1024 * 1024,
  /** `dist/plugin.js.map`. */
  sourceMapBytes: 10 * 1024 * 1024,
  /** The packed `.tgz`. */
  packageBytes: 20 * 1024 * 1024,
})

/** One finding, pointing at the manifest field it is about. */
export interface ManifestIssue {
  /** JSON pointer into the manifest (`/routes/0/path`); `""` is the whole manifest. */
  pointer: string
  /** What is wrong, for a person. */
  message: string
  /** Stable rule id (`schema`, `semver`, `json-schema`, `route-unhandled`, …). */
  rule: string
  /** Errors fail validation; warnings are shown (and shown to reviewers) but pass. */
  severity: 'error' | 'warning'
}

/** Result of {@link validateManifest}. */
export type ManifestValidation =
  | { ok: true; manifest: PluginManifest; errors: []; warnings: ManifestIssue[] }
  | { ok: false; manifest?: undefined; errors: ManifestIssue[]; warnings: ManifestIssue[] }

// ajv is loaded on first use (synchronously), like the compiled schema below.
function newAjv(): Ajv2020 {
  const require = createRequire(import.meta.url)
  const { Ajv2020: AjvCtor } = require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js')
  const formats = require('ajv-formats') as { default?: unknown }
  const addFormats = (formats.default ?? formats) as (ajv: Ajv2020) => Ajv2020
  const ajv = new AjvCtor({ allErrors: true, strict: false, validateFormats: true })
  addFormats(ajv)
  ajv.addKeyword({ keyword: 'secret', schemaType: 'boolean' })
  // A field's data classification (see classification.ts): an annotation, checked by validateManifest.
  ajv.addKeyword({ keyword: 'classification', schemaType: 'string' })
  return ajv
}

// Compiled on first use: importing the SDK (the kernel and sandbox do, for error catalogs) stays cheap.
let compiled:
  | { ajv: Ajv2020; validateSchema: ReturnType<Ajv2020['compile']>; semver: typeof import('semver') }
  | undefined
function validator() {
  if (!compiled) {
    const ajv = newAjv()
    const semver = createRequire(import.meta.url)('semver') as typeof import('semver')
    compiled = { ajv, validateSchema: ajv.compile(manifestSchemaJson), semver }
  }
  return compiled
}

/**
 * Compiles a JSON Schema from a manifest (collection, event payload, route body…) into a
 * validator returning the problems as JSON pointers into the value; what the kernel applies
 * to records, emitted events and requests, and what the test host applies too.
 */
export function compileJsonSchema(
  schema: unknown,
  options: { detailed?: boolean } = {},
): (value: unknown) => SchemaProblem[] {
  const validate = validator().ajv.compile(schema as object)
  return (value) =>
    validate(value)
      ? []
      : (validate.errors ?? []).map((e) =>
          // Detailed: the field a missing or unknown-field issue is about, and what is allowed (schema-problems.ts).
          options.detailed
            ? schemaProblemOf(e, schema)
            : { pointer: e.instancePath, message: e.message ?? 'is invalid' },
        )
}

const hostOpValidators = new Map<string, ReturnType<typeof compileJsonSchema>>()

/**
 * Checks one host call from plugin code against the protocol: a known op and args matching
 * {@link HOST_OP_SCHEMAS}. Returns the problems (empty when valid); the kernel answers a
 * non-empty result with `KRN_ERR_VALIDATION_FAILED` before any capability check.
 */
export function validateHostCall(op: string, args: unknown): Array<{ pointer: string; message: string }> {
  if (!Object.hasOwn(HOST_OP_SCHEMAS, op)) return [{ pointer: '', message: `unknown host operation "${op}"` }]
  let v = hostOpValidators.get(op)
  if (!v) hostOpValidators.set(op, (v = compileJsonSchema(HOST_OP_SCHEMAS[op as HostOp])))
  return v(args)
}

/** Escapes one JSON pointer segment. */
export function pointerSegment(s: string | number): string {
  return String(s).replace(/~/g, '~0').replace(/\//g, '~1')
}

const ptr = (...parts: Array<string | number>) => parts.map((p) => `/${pointerSegment(p)}`).join('')

const FRIENDLY: Record<string, string> = {
  '/name': 'must be @scope/name: lower-case letters, digits and -',
  '/capabilities/':
    'is not a capability (data, events:emit:<pattern>, events:subscribe:<pattern>, http:fetch:<hosts>, ai:complete, ai:embed, knowledge:search, knowledge:write, secrets, jobs, workflows, plugins:call:<plugin>#<action>, metrics:read, metrics:read:<plugin>)',
  '/routes/path': 'must be a path like /orders/:id',
  '/events/': 'must be an event type <plugin>.<entity>.<past-verb>, e.g. orders.order.placed',
  '/permissions/name': 'must be a dotted lower-case permission such as orders.approve',
}

function schemaIssues(errors: ErrorObject[]): ManifestIssue[] {
  const out: ManifestIssue[] = []
  const seen = new Set<string>()
  for (const e of errors) {
    let pointer = e.instancePath
    let message = e.message ?? 'is invalid'
    const p = e.params as Record<string, unknown>
    if (e.keyword === 'required') {
      pointer += `/${pointerSegment(String(p.missingProperty))}`
      message = 'is required'
    } else if (e.keyword === 'additionalProperties') {
      pointer += `/${pointerSegment(String(p.additionalProperty))}`
      message = 'is not a known field'
    } else if (e.keyword === 'propertyNames') {
      continue // the error about the name itself (below) says what is wrong with it
    } else if (typeof (e as { propertyName?: unknown }).propertyName === 'string') {
      pointer += `/${pointerSegment((e as { propertyName: string }).propertyName)}`
      message =
        e.keyword === 'pattern'
          ? `is not an allowed name (${e.instancePath.startsWith('/events') ? 'an event type such as orders.order.placed' : e.instancePath.endsWith('/response') ? 'an HTTP status code' : e.instancePath === '/dependencies' ? 'a plugin name @scope/name' : 'letters, digits, _ or -, starting with a letter or _'})`
          : `name ${message}`
    } else if (e.keyword === 'pattern') {
      const generic = pointer.replace(/\/\d+(?=\/|$)/g, '').replace(/^\/events\/(emits|subscribes).*$/, '/events/')
      const key = pointer.startsWith('/capabilities/') ? '/capabilities/' : generic
      message = FRIENDLY[key] ?? message
    }
    const k = `${pointer}\0${message}`
    if (seen.has(k)) continue
    seen.add(k)
    out.push({ pointer, message, rule: 'schema', severity: 'error' })
  }
  return out
}

/**
 * Validates a manifest (parsed JSON) against the published schema and the rules JSON Schema
 * cannot express: semver versions and ranges, capability syntax, embedded JSON Schemas that
 * compile, unique routes, secret settings, the manifest size limit.
 */
export function validateManifest(input: unknown): ManifestValidation {
  const errors: ManifestIssue[] = []
  const warnings: ManifestIssue[] = []
  const err = (pointer: string, message: string, rule: string) =>
    errors.push({ pointer, message, rule, severity: 'error' })
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return {
      ok: false,
      errors: [{ pointer: '', message: 'the manifest must be a JSON object', rule: 'schema', severity: 'error' }],
      warnings,
    }
  }
  const size = Buffer.byteLength(JSON.stringify(input))
  if (size > SIZE_LIMITS.manifestBytes)
    err('', `the manifest is ${size} bytes; the limit is ${SIZE_LIMITS.manifestBytes}`, 'size-limit')
  const { ajv, validateSchema, semver } = validator()
  if (!validateSchema(input)) errors.push(...schemaIssues(validateSchema.errors ?? []))
  const m = input as Record<string, any>

  if (typeof m.version === 'string' && !semver.valid(m.version))
    err('/version', 'must be a semantic version such as 1.2.3', 'semver')
  if (typeof m.engines?.trellis === 'string' && !semver.validRange(m.engines.trellis))
    err('/engines/trellis', 'must be a semver range such as ^1.0.0', 'semver')
  if (isObj(m.dependencies)) {
    for (const [dep, range] of Object.entries(m.dependencies)) {
      if (typeof range === 'string' && !semver.validRange(range))
        err(ptr('dependencies', dep), 'must be a semver range such as ^1.0.0', 'semver')
      if (dep === m.name) err(ptr('dependencies', dep), 'a plugin cannot depend on itself', 'dependency')
    }
  }
  if (Array.isArray(m.capabilities)) {
    m.capabilities.forEach((c: unknown, i: number) => {
      if (typeof c !== 'string') return
      const parsed = parseCapability(c)
      if ('error' in parsed && /^(events|http|plugins|metrics):/.test(c))
        err(ptr('capabilities', i), parsed.error, 'capability')
    })
  }
  const schemaAt = (pointer: string, schema: unknown) => {
    if (!isObj(schema) && typeof schema !== 'boolean') return
    try {
      ajv.compile(schema as JsonSchema as object)
    } catch (e) {
      err(pointer, `is not a valid JSON Schema: ${(e as Error).message}`, 'json-schema')
    }
  }
  if (isObj(m.settings)) {
    schemaAt('/settings', m.settings)
    for (const [name, prop] of Object.entries(isObj(m.settings.properties) ? m.settings.properties : {})) {
      if (isObj(prop) && prop.secret === true && prop.type !== 'string')
        err(ptr('settings', 'properties', name, 'type'), 'a secret setting must be of type "string"', 'secret')
    }
  }
  if (isObj(m.collections)) {
    for (const [name, c] of Object.entries(m.collections)) {
      if (!isObj(c)) continue
      schemaAt(ptr('collections', name, 'schema'), c.schema)
      if (isObj(c.schema) && c.schema.type !== 'object')
        err(ptr('collections', name, 'schema', 'type'), 'a collection schema must have type "object"', 'json-schema')
      const props = isObj(c.schema) && isObj(c.schema.properties) ? c.schema.properties : {}
      const system = new Set(['id', 'version', 'createdAt', 'updatedAt'])
      for (const field of Object.keys(props))
        if (system.has(field))
          err(
            ptr('collections', name, 'schema', 'properties', field),
            'is set by the kernel; remove it from the schema',
            'json-schema',
          )
      if (Array.isArray(c.indexes)) {
        c.indexes.forEach((ix: unknown, i: number) => {
          if (!isObj(ix) || !Array.isArray(ix.fields)) return
          ix.fields.forEach((f: unknown, j: number) => {
            if (typeof f === 'string' && !(f in props) && !system.has(f))
              err(
                ptr('collections', name, 'indexes', i, 'fields', j),
                `"${f}" is not a property of the collection schema`,
                'index',
              )
          })
        })
      }
    }
  }
  for (const p of classificationProblems(m)) err(p.pointer, p.message, 'classification')
  if (isObj(m.events) && isObj(m.events.emits)) {
    for (const [type, e] of Object.entries(m.events.emits))
      if (isObj(e)) schemaAt(ptr('events', 'emits', type, 'schema'), e.schema)
  }
  if (Array.isArray(m.routes)) {
    const seen = new Map<string, number>()
    m.routes.forEach((r: unknown, i: number) => {
      if (!isObj(r)) return
      const key = `${r.method} ${normalisePath(String(r.path))}`
      if (seen.has(key))
        err(ptr('routes', i), `duplicates route ${seen.get(key)} (${r.method} ${r.path})`, 'route-duplicate')
      else seen.set(key, i)
      if (isObj(r.request)) for (const [k, s] of Object.entries(r.request)) schemaAt(ptr('routes', i, 'request', k), s)
      if (isObj(r.response))
        for (const [k, s] of Object.entries(r.response)) schemaAt(ptr('routes', i, 'response', k), s)
      if ((r.method === 'GET' || r.method === 'DELETE') && isObj(r.request) && r.request.body !== undefined)
        err(ptr('routes', i, 'request', 'body'), `a ${r.method} route has no body`, 'route-body')
    })
  }
  if (isObj(m.actions)) {
    for (const [name, a] of Object.entries(m.actions)) {
      if (!isObj(a)) continue
      schemaAt(ptr('actions', name, 'input'), a.input)
      schemaAt(ptr('actions', name, 'output'), a.output)
    }
  }
  errors.sort((a, b) => (a.pointer < b.pointer ? -1 : a.pointer > b.pointer ? 1 : 0))
  if (errors.length) return { ok: false, errors, warnings }
  return { ok: true, manifest: input as PluginManifest, errors: [], warnings }
}

function normalisePath(p: string): string {
  return p.replace(/:[A-Za-z_][A-Za-z0-9_]*/g, ':')
}

function isObj(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export { lintPlugin, type LintInput } from './lint.js'
