// Types of isolate-bootstrap.js, which runs inside each isolate as a script (hence global names,
// with a Boot prefix). Type-only: nothing here exists at run time.

/** The only host function an isolate gets: fire-and-forget, strings and numbers out. */
type BootHostCall = (token: number, cid: number, op: string, args: string) => void

/** The limits the bootstrap reads (a subset of SandboxLimits, parsed from the worker's JSON). */
interface BootLimits {
  maxHostCalls: number
  maxInputBytes: number
  maxOutputBytes: number
  maxLogLines: number
  maxLogBytes: number
}

/** One invocation's state inside the isolate. */
interface BootInvocation {
  token: number
  limits: BootLimits
  pending: Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>
  nextCall: number
  calls: number
  limitHit: boolean
  lines: number
  bytes: number
  dropped: number
  logs: string
  result: string | undefined
}

/** What plugin code gets as `host`. */
interface BootHost {
  call: (op: unknown, args: unknown) => Promise<unknown>
  log: (level: unknown, message: unknown, fields?: unknown) => void
}

/** Which entry an invocation runs. */
interface BootEntry {
  kind: string
  name: string
}
