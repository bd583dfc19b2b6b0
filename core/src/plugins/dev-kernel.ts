import { randomBytes } from 'node:crypto'
import canonicalizeModule from 'canonicalize'
import type {
  DevEvent,
  DevInvocation,
  DevKernel,
  DevKernelOptions,
  DevResponse,
  PluginManifest,
  StartDevKernel,
} from '@trellis/plugin-sdk'
import { createKernel } from '../kernel.js'
import type { Extension } from '../extension-api/define.js'
import { loadConfig } from '../config.js'
import { createPlatformAdmin } from '../bootstrap.js'
import { orgTx, type KernelContext } from '../kernel-context.js'
import { PLATFORM_ORG } from '../db/database.js'
import { existsSync } from 'node:fs'
import { defaultCacheDir, embeddedTemplate, embeddedTemplatePath } from '../db/embedded-template.js'
import { appendAudit } from '../audit/audit-log.js'
import { emitEvents } from '../events/outbox.js'
import { matchesEventPattern } from '@trellis/plugin-sdk'
import { PLG } from '../errors.js'
import { invocationView } from './installation-routes.js'
import {
  INSTALLATION_COLS,
  defaultMount,
  insertInstallation,
  splitSettings,
  toInstallation,
  type InstallationRow,
} from './installations.js'

const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined
const SYSTEM = { actor: { kind: 'system' as const, id: 'dev-kernel' } }

/**
 * A kernel on a throw-away embedded database with one tenant, for plugin tests and
 * `trellis-plugin dev`: the real HTTP stack, database, row-level security, sandbox and event
 * pipeline, with shortcuts to install a built plugin and look at what it did. `openTenant` gives
 * another tenant of the same kernel (the warm kernel that `trellis-plugin test` and `dev` share
 * gives each run its own); closing such a tenant's view leaves the kernel running.
 */
export async function startDevKernel(
  options: DevKernelOptions = {},
  assembly: { extensions?: Extension[] } = {},
): ReturnType<StartDevKernel> {
  // Its accounts have random throw-away passwords on a throw-away database on loopback: hashing
  // them at the production scrypt cost (128 MiB, ~0.4 s of CPU each) would make every tenant a
  // run opens cost a second and more of CPU (a tenant admin hashed, two sign-ins) for nothing.
  // New hashes only, in this process (the warm kernel's own, or a test's); set it to keep another.
  process.env.TRELLIS_PASSWORD_COST ??= '10'
  const env: NodeJS.ProcessEnv = {
    LOG_LEVEL: options.logLevel ?? 'silent',
    TRELLIS_SECRET_KEY: randomBytes(32).toString('hex'),
    TRELLIS_DATA_DIR: '/nonexistent/trellis-dev',
    PORT: String(options.port ?? 0),
    HOST: options.host ?? '127.0.0.1',
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}),
  }
  const cacheDir = options.cacheDir ?? defaultCacheDir()
  // Without a usable cache (a read-only home, a damaged file) the kernel still starts, only slower.
  const useCache = !options.databaseUrl && cacheDir !== false
  const templateMade = useCache && !existsSync(embeddedTemplatePath(cacheDir))
  const template = useCache ? await embeddedTemplate(cacheDir).catch(() => undefined) : undefined
  const kernel = await createKernel({
    config: loadConfig(env),
    embeddedDir: 'memory://',
    ...(template ? { embeddedTemplate: template } : {}),
    migrate: true,
    rateLimitPerMinute: 1_000_000,
    // A developer reads every run's transcript whole (`trellis-plugin logs`).
    plugins: { sandboxWorkers: 1, installationTtlMs: 0, detailedTranscriptsPerMinute: Number.POSITIVE_INFINITY },
    events: { egressAllow: options.egressAllow ?? [], sweepMs: 200 },
    extensions: assembly.extensions ?? [],
  })
  const k = kernel.ctx
  try {
    const admin = { email: 'platform@trellis.dev', password: randomBytes(18).toString('base64url') }
    await createPlatformAdmin(k, admin)
    const inject = async (
      method: string,
      path: string,
      init: { body?: unknown; headers?: Record<string, string>; token?: string } = {},
    ): Promise<DevResponse> => {
      const headers: Record<string, string> = { ...(init.headers ?? {}) }
      if (init.token) headers.authorization = `Bearer ${init.token}`
      const res = await kernel.app.inject({
        method: method as 'GET',
        url: path,
        headers: init.body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        ...(init.body === undefined ? {} : { payload: JSON.stringify(init.body) }),
      })
      const type = String(res.headers['content-type'] ?? '')
      const flat: Record<string, string> = {}
      for (const [h, v] of Object.entries(res.headers))
        if (v !== undefined) flat[h] = Array.isArray(v) ? v.join(', ') : String(v)
      return {
        status: res.statusCode,
        headers: flat,
        body: res.body === '' ? null : type.includes('json') ? JSON.parse(res.body) : res.body,
      }
    }
    const login = async (email: string, password: string) => {
      const r = await inject('POST', '/v1/auth/login', { body: { email, password } })
      if (r.status !== 200) throw new Error(`dev kernel: sign-in failed (${r.status})`)
      return (r.body as { accessToken: string }).accessToken
    }
    const url = options.port === undefined ? undefined : (await kernel.listen()).replace('[::1]', 'localhost')
    const database: DevKernel['database'] = options.databaseUrl
      ? { kind: 'postgres' }
      : { kind: 'embedded', ...(template ? { template, templateMade } : {}) }
    let devBuild = 0
    // Versions are the platform's, shared by every tenant: a rebuild gets its own build suffix.
    const nextBuild = () => `${Date.now().toString(36)}${++devBuild}`
    // A tenant of its own for each caller (a test run, a dev session) of one running kernel.
    const openTenant = async (slug: string, closeKernel: boolean): Promise<DevKernel> => {
      const tenantAdmin = { email: `admin@${slug}.dev`, password: randomBytes(18).toString('base64url') }
      const created = await inject('POST', '/v1/tenants', {
        // Signed in again for each tenant: a kernel kept running outlives an access token.
        token: await login(admin.email, admin.password),
        body: { name: `${slug} tenant`, slug, admin: { ...tenantAdmin, name: 'Dev admin' } },
      })
      if (created.status !== 201)
        throw new Error(`dev kernel: tenant not created (${created.status} ${JSON.stringify(created.body)})`)
      const tenantId = (created.body as { id: string }).id
      const token = await login(tenantAdmin.email, tenantAdmin.password)
      return tenantView(k, {
        url,
        database,
        tenant: { id: tenantId, slug, adminEmail: tenantAdmin.email, adminPassword: tenantAdmin.password, token },
        inject,
        nextBuild,
        openTenant: (o) => openTenant(o?.slug ?? `dev-${randomBytes(4).toString('hex')}`, false),
        close: closeKernel ? () => kernel.close() : async () => {},
      })
    }
    return await openTenant(options.tenantSlug ?? 'dev', true)
  } catch (err) {
    await kernel.close()
    throw err
  }
}

interface TenantViewInput {
  url: string | undefined
  database: DevKernel['database']
  tenant: DevKernel['tenant']
  inject: (
    method: string,
    path: string,
    init?: { body?: unknown; headers?: Record<string, string>; token?: string },
  ) => Promise<DevResponse>
  nextBuild: () => string
  openTenant: DevKernel['openTenant']
  close: () => Promise<void>
}

/** The {@link DevKernel} of one tenant: its shortcuts to install, invoke and look. */
function tenantView(k: KernelContext, input: TenantViewInput): DevKernel {
  const { inject, tenant } = input
  const tenantId = tenant.id
  const token = tenant.token
  const installationOf = async (plugin: string) => {
    const inst = (await k.plugins.installed(tenantId)).byPlugin.get(plugin)
    if (!inst) throw PLG.NOT_INSTALLED({ name: plugin })
    return inst
  }
  const rowEvent = (r: {
    id: string
    type: string
    source: string
    subject: string
    data: unknown
    time: Date
  }): DevEvent => ({
    id: r.id,
    type: r.type,
    source: r.source,
    subject: r.subject,
    data: r.data,
    time: new Date(r.time).toISOString(),
  })
  // The record as the API shows it (a DevInvocation, with a few fields more).
  const toDev = (r: Record<string, unknown>) => invocationView(r) as DevInvocation

  const dev: DevKernel = {
    url: input.url,
    database: input.database,
    tenant,
    async install(bundle, opts = {}) {
      const manifest = bundle.manifest as unknown as PluginManifest
      const version = await orgTx(k, PLATFORM_ORG, async (tx) => {
        const existing = await k.plugins.versions.find(tx, manifest.name, manifest.version)
        let stated = manifest
        if (existing) {
          const sameCode = existing.code === bundle.code && canonicalize(existing.manifest) === canonicalize(manifest)
          if (sameCode) return existing
          stated = {
            ...manifest,
            version: `${manifest.version.split('+')[0]}+dev.${input.nextBuild()}`,
          }
        }
        // A local tool: what a developer builds is approved for the dev tenant on the spot.
        return k.plugins.versions.register(
          tx,
          {
            manifest: stated,
            code: bundle.code,
            ...(bundle.sourceMap ? { sourceMap: bundle.sourceMap } : {}),
            status: 'approved',
          },
          (b) => k.plugins.probe(b),
          'system:dev-kernel',
        )
      })
      const inst = await orgTx(k, tenantId, async (tx) => {
        const { settings, secrets } = splitSettings(version, opts.settings ?? {})
        const [current] = await tx.sql<InstallationRow>(
          `select ${INSTALLATION_COLS} from plugin_installations where plugin = ?`,
          [version.name],
        )
        await k.plugins.data.ensureIndexes(tx, version.name, version.manifest.collections ?? {})
        if (!current) {
          const created = await insertInstallation(tx, k.secrets, {
            version,
            mount: defaultMount(version.name),
            capabilities: version.manifest.capabilities,
            settings,
            secrets,
            installedBy: 'system:dev-kernel',
          })
          await appendAudit(tx, tenantId, {
            ...SYSTEM,
            action: 'plugin.installed',
            target: { kind: 'plugin_installation', id: created.id },
            data: { plugin: version.name, version: version.version, capabilities: created.capabilities },
          })
          return created
        }
        const [row] = await tx.sql<InstallationRow>(
          `update plugin_installations set version_id = ?::uuid, capabilities = ?::text[], updated_at = now() where id = ?::uuid returning ${INSTALLATION_COLS}`,
          [version.id, version.manifest.capabilities, current.id],
        )
        await appendAudit(tx, tenantId, {
          ...SYSTEM,
          action: 'plugin.upgraded',
          target: { kind: 'plugin_installation', id: current.id },
          data: { plugin: version.name, version: version.version, capabilities: version.manifest.capabilities },
        })
        return toInstallation(row!)
      })
      k.plugins.forgetTenant(tenantId)
      return { installationId: inst.id, version: version.version, mount: inst.mount }
    },
    request: (method, path, init = {}) => inject(method, path, { ...init, token: init.token ?? token }),
    async invoke(plugin, kind, name, input) {
      const installation = await installationOf(plugin)
      return k.plugins.invoke({
        tenantId,
        installation,
        entry: { kind, name },
        input,
        caller: { kind: 'system', id: 'dev-kernel', permissions: [] },
      })
    },
    async emit(plugin, type, data, subject) {
      const [id] = await orgTx(k, tenantId, (tx) =>
        emitEvents(tx, { type, subject: subject ?? type, data: data as Record<string, unknown>, source: 'test' }),
      )
      const [row] = await k.db.inOrg(tenantId, (tx) =>
        tx.sql<{ id: string; type: string; source: string; subject: string; data: unknown; time: Date }>(
          'select id, type, source, subject, data, time from events where id = ?::uuid',
          [id!],
        ),
      )
      const event = rowEvent(row!)
      const installation = await installationOf(plugin)
      const version = await k.plugins.currentVersion(tenantId, installation)
      const entry = (version.manifest.events?.subscribes ?? []).find((s) => s === type || matchesEventPattern(s, type))
      if (entry)
        await k.plugins.invoke({
          tenantId,
          installation,
          entry: { kind: 'event', name: entry },
          input: { ...event, tenantId, subject: event.subject },
          caller: { kind: 'event', id: event.id, permissions: [] },
        })
      return event
    },
    async records(plugin, collection) {
      const rows = await k.db.inOrg(tenantId, (tx) =>
        tx.sql<{ id: string; version: number; data: Record<string, unknown>; created_at: Date; updated_at: Date }>(
          'select id, version, data, created_at, updated_at from plugin_records where plugin = ? and collection = ? order by id',
          [plugin, collection],
        ),
      )
      return rows.map((r) => ({
        ...r.data,
        id: r.id,
        version: r.version,
        createdAt: new Date(r.created_at).toISOString(),
        updatedAt: new Date(r.updated_at).toISOString(),
      }))
    },
    async events(plugin) {
      const rows = await k.db.inOrg(tenantId, (tx) =>
        tx.sql<{ id: string; type: string; source: string; subject: string; data: unknown; time: Date }>(
          'select id, type, source, subject, data, time from events where source = ? order by id',
          [plugin],
        ),
      )
      return rows.map(rowEvent)
    },
    async invocations(plugin) {
      await k.plugins.recorder.flush()
      const rows = await k.db.inOrg(tenantId, (tx) =>
        tx.sql<Record<string, unknown>>(
          'select * from plugin_invocations where plugin = ? order by id desc limit 500',
          [plugin],
        ),
      )
      return rows.map(toDev)
    },
    onInvocation(listener) {
      return k.plugins.onInvocation((rec) => {
        if (rec.tenantId === tenantId) listener(rec)
      })
    },
    openTenant: input.openTenant,
    close: input.close,
  }
  return dev
}
