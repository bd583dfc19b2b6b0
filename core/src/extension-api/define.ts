/**
 * How an extension is declared: the services it uses (`deps`) and what it adds through the
 * kernel's extension points. The kernel builds its services, hands each extension exactly the
 * ones it declared, and collects what it registered — no context bag, no field overwritten later.
 */
import type { Api } from '../http/types.js'
import type { ExtensionTx, PolicyVersion, ServiceOf, ServiceRef } from './services.js'

/** A rule for installing a version in a tenant; throws (a problem with a stable code) to refuse. Runs in the installing transaction. */
export type InstallPolicy = (tx: ExtensionTx, tenantId: string, version: PolicyVersion) => Promise<void>

/** Something that runs in the background while the kernel runs (it stops before the sandbox and database close). */
export interface BackgroundJob {
  name: string
  start(): void
  stop(): Promise<void>
}

/** What `trellis start --demo` gives each demo seeder, after the demo partner, tenant and accounts exist. */
export interface DemoContext {
  tenantId: string
  partnerId: string
  /** The demo tenant admin's email and the demo password. */
  adminEmail: string
  password: string
  log(line: string): void
  /** Progress of a long load (a terminal draws a bar); may be absent. */
  progress?: (done: number, total: number) => void
  /** A request to the kernel's own HTTP API (in process), optionally with a bearer token. */
  request(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: any }>
}

/** What a demo seeder adds to the start-up summary: accounts it made (with the demo password) and notes. */
export interface DemoResult {
  accounts?: Array<{ role: string; email: string; org: string }>
  notes?: string[]
}

export type DemoSeeder = (demo: DemoContext) => Promise<DemoResult | undefined>

/** Where an extension adds behaviour. Each may take several contributions, from several extensions. */
export interface ExtensionPoints {
  /** Rules every install and upgrade must pass (all of them, in registration order). */
  installPolicies: { add(policy: InstallPolicy): void }
  /** Routes under `/v1`. */
  routes: { add(register: (app: Api) => void): void }
  /** Routes outside `/v1` (e.g. the console's pages and assets), registered after the API; may register Fastify plugins. */
  pages: { add(register: (app: Api) => void | Promise<void>): void }
  /** Background workers, started with the kernel and stopped when it closes. */
  jobs: { add(job: BackgroundJob): void }
  /** What `--demo` adds to the demo tenant, in extension order. */
  demo: { add(seeder: DemoSeeder): void }
}

type Deps = Record<string, ServiceRef<unknown>>
/** The services an extension declared, resolved. */
export type ResolvedDeps<D extends Deps> = { readonly [K in keyof D]: ServiceOf<D[K]> }

/** An extension of the kernel, as {@link defineExtension} makes it. */
export interface Extension {
  readonly name: string
  readonly deps: Deps
  register(deps: Record<string, unknown>, points: ExtensionPoints): void | Promise<void>
}

/** Declares an extension: its name, the services it uses, and what it registers. */
export function defineExtension<D extends Deps>(def: {
  name: string
  deps: D
  register(deps: ResolvedDeps<D>, points: ExtensionPoints): void | Promise<void>
}): Extension {
  return {
    name: def.name,
    deps: def.deps,
    register: (deps, points) => def.register(deps as ResolvedDeps<D>, points),
  }
}
