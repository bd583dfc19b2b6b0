/**
 * Error catalogs. Every package (and every plugin) declares its errors once, with a stable
 * code, an HTTP status and a message builder; callers throw `CATALOG.NAME(details)`.
 *
 * @example
 * ```ts
 * export const MKT = defineErrors('MKT', {
 *   VERSION_NOT_MONOTONIC: { status: 409, title: 'Version not greater than the last',
 *     message: (d: { version: string; last: string }) => `${d.version} is not greater than ${d.last}` },
 * })
 * throw MKT.VERSION_NOT_MONOTONIC({ version: '1.0.0', last: '1.2.0' }) // code MKT_ERR_VERSION_NOT_MONOTONIC
 * ```
 */

/** One entry of an error catalog. */
export interface ErrorSpec<D = void> {
  /** HTTP status the error maps to when it reaches an API caller. */
  status: number
  /** Short, fixed, human summary (RFC 9457 `title`). */
  title: string
  /** Builds the occurrence-specific explanation (RFC 9457 `detail`) from the details. */
  message: (details: D) => string
}

/** An error with a stable code; what every Trellis package throws for expected failures. */
export class TrellisError extends Error {
  /** Stable, never-reused code such as `KRN_ERR_NOT_FOUND`. */
  readonly code: string
  /** HTTP status. */
  readonly status: number
  /** Short fixed summary of the code. */
  readonly title: string
  /** Structured details safe to show to the caller. */
  readonly details: unknown

  constructor(
    code: string,
    status: number,
    title: string,
    detail: string,
    details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(detail, options)
    this.name = 'TrellisError'
    this.code = code
    this.status = status
    this.title = title
    this.details = details
  }
}

/** The throwable factory for one code, with its code and spec attached. */
// biome-ignore lint/suspicious/noConfusingVoidType: void marks a code that takes no details
export type ErrorFactory<D> = ([D] extends [void]
  ? (details?: D, options?: { cause?: unknown }) => TrellisError
  : unknown extends D
    ? (details?: D, options?: { cause?: unknown }) => TrellisError
    : (details: D, options?: { cause?: unknown }) => TrellisError) & {
  readonly code: string
  readonly status: number
  readonly title: string
  /** True when `err` is a TrellisError of this code. */
  is(err: unknown): err is TrellisError
}

type DetailsOf<S> = S extends ErrorSpec<infer D> ? D : never

/** A whole catalog: one factory per name, plus the list of its entries. */
export type ErrorCatalog<S extends Record<string, ErrorSpec<any>>> = {
  readonly [K in keyof S]: ErrorFactory<DetailsOf<S[K]>>
} & {
  /** Every code of the catalog, for documentation and tests. */
  readonly entries: ReadonlyArray<{ code: string; status: number; title: string }>
}

const CODE_PART = /^[A-Z][A-Z0-9_]*$/

/**
 * Declares an error catalog under a prefix. Codes are `<PREFIX>_ERR_<NAME>`.
 * @param prefix - upper-case prefix (`KRN`, `AUTH`, `SBX`, `EVT`, `MKT`, `SDK`, or a plugin's own)
 * @param specs - one {@link ErrorSpec} per error name
 */
export function defineErrors<const S extends Record<string, ErrorSpec<any>>>(
  prefix: string,
  specs: S,
): ErrorCatalog<S> {
  if (!CODE_PART.test(prefix)) throw new TypeError(`error prefix must be upper-case letters, digits or _: ${prefix}`)
  const catalog: Record<string, unknown> = {}
  const entries: Array<{ code: string; status: number; title: string }> = []
  for (const [name, spec] of Object.entries(specs)) {
    if (!CODE_PART.test(name)) throw new TypeError(`error name must be upper-case letters, digits or _: ${name}`)
    const code = `${prefix}_ERR_${name}`
    const factory = (details?: unknown, options?: { cause?: unknown }) =>
      new TrellisError(code, spec.status, spec.title, spec.message(details as never), details, options)
    Object.defineProperties(factory, {
      code: { value: code, enumerable: true },
      status: { value: spec.status, enumerable: true },
      title: { value: spec.title, enumerable: true },
      is: { value: (err: unknown) => err instanceof TrellisError && err.code === code },
    })
    catalog[name] = factory
    entries.push({ code, status: spec.status, title: spec.title })
  }
  catalog.entries = Object.freeze(entries)
  return Object.freeze(catalog) as ErrorCatalog<S>
}

/** True when `err` carries a stable Trellis error code (also for errors copied across a process boundary). */
export function isTrellisError(err: unknown): err is TrellisError {
  return err instanceof TrellisError
}

/** The `type` of every Trellis problem: `urn:trellis:error:<code>`. */
export const PROBLEM_TYPE_PREFIX = 'urn:trellis:error:'

/**
 * An RFC 9457 problem, the shape the kernel answers every error with: `type`
 * (`urn:trellis:error:<code>`), `title` (the code's fixed summary), `status`, `code`, `detail`
 * and `instance` (the request's URL, which the kernel fills in for plugin routes), plus
 * extension members.
 */
export interface Problem {
  type: string
  title: string
  status: number
  code: string
  detail: string
  instance?: string
  [extension: string]: unknown
}

/** The problem body of `err`; `extra` adds extension members and never overrides the standard ones. */
export function problemOf(err: TrellisError, extra: Record<string, unknown> = {}): Problem {
  return {
    ...extra,
    type: `${PROBLEM_TYPE_PREFIX}${err.code}`,
    title: err.title,
    status: err.status,
    code: err.code,
    detail: err.message,
  }
}

/** What a route answers a refusal with: the problem, with status and media type set. */
export interface ProblemResponse {
  status: number
  headers: Record<string, string>
  body: Problem
}

/** Extension members a thrown error carries for its problem (`details.extra` of a {@link WordedError}). */
function extraOf(err: TrellisError): Record<string, unknown> | undefined {
  const extra = (err.details as { extra?: unknown } | null | undefined)?.extra
  return extra && typeof extra === 'object' ? (extra as Record<string, unknown>) : undefined
}

/**
 * A route response answering with `err` as `application/problem+json`, in the kernel's shape.
 * `extra` defaults to the error's own extension members (`details.extra`).
 *
 * @example
 * ```ts
 * const CAT = defineErrors('CAT', { PRODUCT_NOT_FOUND: { status: 404, title: 'Product not found', message: (d: { sku: string }) => `no product ${d.sku}` } })
 * if (!product) return problemResponse(CAT.PRODUCT_NOT_FOUND({ sku }))
 * ```
 */
export function problemResponse(
  err: TrellisError,
  extra: Record<string, unknown> | undefined = extraOf(err),
): ProblemResponse {
  return { status: err.status, headers: { 'content-type': 'application/problem+json' }, body: problemOf(err, extra) }
}

/**
 * A route's typed refusal: the answer the kernel gives its own errors (RFC 9457
 * `application/problem+json` with `type`, `title`, `status`, `code`, `detail`), built from an
 * entry of the plugin's {@link defineErrors} catalog. Return it from a route handler.
 *
 * - `problem(CATALOG.NAME(details), extra?)` answers with an error already made;
 * - `problem(CATALOG.NAME, 'detail text', extra?)` words the detail of a {@link worded} entry.
 *
 * `extra` adds extension members (say, the rows that failed); it never overrides the standard
 * ones. Thrown instead of returned, an error would reach the caller as a 502
 * `SBX_ERR_PLUGIN_ERROR` — use {@link problemFromError} in a `catch` for refusals raised deep
 * inside an operation.
 *
 * @example
 * ```ts
 * export const ORD = defineErrors('ORD', {
 *   ORDER_NOT_FOUND: { status: 404, title: 'Order not found', message: worded },
 * })
 * const o = await ctx.data.orders.find({ where: { number }, limit: 1 })
 * if (!o.items.length) return problem(ORD.ORDER_NOT_FOUND, `no order ${number}`) // 404 ORD_ERR_ORDER_NOT_FOUND
 * ```
 */
export function problem(error: TrellisError, extra?: Record<string, unknown>): ProblemResponse
export function problem(error: WordedError, detail: string, extra?: Record<string, unknown>): ProblemResponse
export function problem(
  error: TrellisError | WordedError,
  detailOrExtra?: string | Record<string, unknown>,
  extra?: Record<string, unknown>,
): ProblemResponse {
  if (error instanceof TrellisError)
    return problemResponse(error, typeof detailOrExtra === 'object' ? detailOrExtra : extraOf(error))
  return problemResponse(error({ detail: String(detailOrExtra ?? error.title) }), extra)
}

/** One problem of a bulk write (an import), by 1-based row of the input. */
export interface RowProblem {
  /** 1-based row of the input (a CSV's header is row 0). */
  row: number
  /** The field at fault, when one is. */
  field?: string
  /** A short machine-readable reason, e.g. `required`, `exists`, `unknown_product`. */
  code: string
  /** What is wrong, for a person. */
  message: string
}

/**
 * An all-or-nothing bulk write's refusal: the problem of `error` (a {@link worded} entry) with
 * every row's problems, sorted by row, as `errors`, and the number of rows read as `rows` —
 * detail `"<n> of <rows> <noun> are invalid; nothing was written"`. Return it before writing.
 *
 * @example
 * ```ts
 * if (errors.length) return rowsProblem(CAT.CSV_ROWS, errors, rows.length)
 * ```
 */
export function rowsProblem(error: WordedError, errors: RowProblem[], rows: number, noun = 'rows'): ProblemResponse {
  const sorted = [...errors].sort((a, b) => a.row - b.row)
  const invalid = new Set(sorted.map((e) => e.row)).size
  return problem(error, `${invalid} of ${rows} ${noun} are invalid; nothing was written`, { rows, errors: sorted })
}

/**
 * For a route's `catch`: a TrellisError of one of the plugin's own catalogs becomes its problem
 * response (thrown, it would reach the caller as a 502 SBX_ERR_PLUGIN_ERROR); anything else is
 * rethrown.
 *
 * @example
 * ```ts
 * try {
 *   return { status: 200, body: await resolveException(ctx, input) } // throws ORD.* refusals
 * } catch (err) {
 *   return problemFromError(err, [ORD])
 * }
 * ```
 */
export function problemFromError(
  err: unknown,
  catalogs: ReadonlyArray<{ entries: ReadonlyArray<{ code: string }> }>,
): ProblemResponse {
  if (err instanceof TrellisError && catalogs.some((c) => c.entries.some((e) => e.code === err.code)))
    return problemResponse(err)
  throw err
}

/**
 * What a {@link worded} entry takes: the detail its call site words, and extension members its
 * problem carries (see {@link problem}).
 */
export interface WordedDetails {
  /** The occurrence-specific explanation (RFC 9457 `detail`). */
  detail: string
  /** Extension members of the problem, e.g. the rows that failed. */
  extra?: Record<string, unknown>
}

/** The message builder of a catalog entry whose detail each call site words: `message: worded`. */
export const worded = (d: WordedDetails): string => d.detail

/**
 * A factory of such an entry: `ORD.ORDER_NOT_FOUND({ detail: 'no order 42' })`, or thrown
 * with extension members: `throw ORD.STOCK_STILL_SHORT({ detail, extra: { short } })`.
 */
export type WordedError = ErrorFactory<WordedDetails>
