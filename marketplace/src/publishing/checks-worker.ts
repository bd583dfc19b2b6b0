/**
 * The automated checks as jobs. A version is published in status `checking`; a worker in every
 * kernel process claims such versions one at a time — a short lease taken with
 * `for update skip locked`, so processes share the work and never run one version twice at
 * once — runs the checks that need the sandbox, stores every result in `checks`, and moves the
 * version to `in_review` or `failed_checks`. A process that dies mid-check leaves its lease to
 * expire; the version is then claimed again (by any process, or this one after a restart). A
 * version whose checks keep bringing the checker down fails after `maxAttempts`.
 */
import semver from 'semver'
import { lintPlugin, SIZE_LIMITS, type PluginManifest } from '@trellis/plugin-sdk'
import { capabilityDiff, check, staticScan, type CheckResult } from './checks.js'
import { promptDiff } from './prompt-diff.js'
import { SOURCE } from './publisher.js'
import { subscriptionCheck } from './capability-checks.js'
import { classificationCheck } from './classification-check.js'
import { PLATFORM_ORG } from '@trellis/core'
import type { Services } from '../services.js'

export interface ChecksWorkerOptions {
  /** How soon to look again for versions to check when nothing woke the worker (ms); doubles while idle. */
  pollMs?: number
  /** The longest idle wait (ms). */
  maxPollMs?: number
  /** How long a claim lasts before another process may take the version over (seconds). */
  leaseSeconds?: number
  /** Claims of one version before it fails for good. */
  maxAttempts?: number
}

interface Claimed {
  id: string
  name: string
  version: string
  sha256: string
  manifest: PluginManifest
  code: string
  source_map: string | null
  publisher_id: string | null
  checks: CheckResult[]
  checks_attempts: number
}

export class ChecksWorker {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private again = false
  private stopped = false
  private readonly pollMs: number
  private readonly maxPollMs: number
  private idleMs: number
  private found = false
  private readonly leaseSeconds: number
  private readonly maxAttempts: number

  constructor(
    private readonly k: Services,
    opts: ChecksWorkerOptions = {},
  ) {
    this.pollMs = opts.pollMs ?? 2000
    this.maxPollMs = Math.max(this.pollMs, opts.maxPollMs ?? 30_000)
    this.idleMs = this.pollMs
    this.leaseSeconds = Math.max(5, Math.floor(opts.leaseSeconds ?? 120))
    this.maxAttempts = opts.maxAttempts ?? 3
  }

  start(): void {
    this.stopped = false
    this.schedule(0)
  }

  /** Look for work now (a version was just published). */
  nudge(): void {
    if (this.stopped) return
    this.idleMs = this.pollMs
    if (this.running) this.again = true
    else this.schedule(0)
  }

  /** Stops polling and waits for the version being checked, if any. */
  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    await this.running
  }

  /** Runs until no claimable version is left (tests call it to wait for the checks). */
  async drain(): Promise<number> {
    let n = 0
    while (!this.stopped && (await this.checkOne())) n++
    return n
  }

  private schedule(ms: number): void {
    if (this.stopped) return
    if (this.timer) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = undefined
      if (this.running) {
        this.again = true
        return
      }
      this.running = this.loop().finally(() => {
        this.running = undefined
        // Idle processes look less and less often (another process's publish, or a lease left
        // by a crashed one, waits at most maxPollMs); work found or a nudge resets the pace.
        this.idleMs = this.found ? this.pollMs : Math.min(this.idleMs * 2, this.maxPollMs)
        if (this.again) {
          this.again = false
          this.schedule(0)
        } else this.schedule(this.idleMs)
      })
    }, ms)
    this.timer.unref()
  }

  private async loop(): Promise<void> {
    this.found = false
    try {
      while (!this.stopped && (await this.checkOne())) this.found = true
    } catch (err) {
      if (!this.stopped) this.k.logger.error({ err }, 'marketplace checks: claiming or storing failed; retrying later')
    }
  }

  /** Claims one version and checks it; false when there was none. */
  async checkOne(): Promise<boolean> {
    const claimed = await this.claim()
    if (!claimed) return false
    let results: CheckResult[]
    if (claimed.checks_attempts > this.maxAttempts) {
      results = [
        check('checks-run', 'failed', true, {
          reason: `the checks did not complete in ${this.maxAttempts} attempts (the bundle may crash or hang the checker)`,
        }),
      ]
    } else {
      try {
        results = await this.runChecks(claimed)
      } catch (err) {
        // Not a verdict on the bundle (the kernel is stopping, the database went away): let the
        // lease go so the version is checked again.
        await this.release(claimed.id).catch(() => undefined)
        if (this.stopped) return false
        throw err
      }
    }
    await this.finish(claimed, results)
    return true
  }

  private claim(): Promise<Claimed | undefined> {
    return this.k.tx.run(PLATFORM_ORG, async (tx) => {
      const row = await this.k.versions.claimForChecks(tx, this.leaseSeconds)
      return row as unknown as Claimed | undefined
    })
  }

  private async release(id: string): Promise<void> {
    await this.k.tx.run(PLATFORM_ORG, (tx) => this.k.versions.releaseClaim(tx, id))
  }

  /** The checks that need the sandbox or other versions. */
  async runChecks(v: Claimed): Promise<CheckResult[]> {
    const results: CheckResult[] = []
    const manifest = v.manifest
    const bundleBytes = Buffer.byteLength(v.code)
    const sourceMapBytes = Buffer.byteLength(v.source_map ?? '')

    // The bundle loads in the sandbox and exports exactly what the manifest declares.
    let entries: Record<string, string[]> | undefined
    let loadError: string | undefined
    try {
      entries = await this.k.plugins.probe({
        id: manifest.name,
        version: manifest.version,
        code: v.code,
        sha256: v.sha256,
        ...(v.source_map ? { sourceMap: v.source_map } : {}),
      })
    } catch (err) {
      if (this.stopped) throw err
      loadError = `${(err as { code?: string }).code ? `${(err as { code: string }).code}: ` : ''}${(err as Error).message}`
    }
    if (!entries) {
      results.push(
        check('sandbox-load', 'failed', true, { reason: `the bundle does not load in the sandbox: ${loadError}` }),
      )
    } else {
      const lint = lintPlugin({ manifest, entries, sizes: { bundleBytes, sourceMapBytes } })
      const issue = (i: { pointer: string; message: string; rule?: string }) => ({
        pointer: i.pointer,
        message: i.message,
        rule: i.rule ?? null,
      })
      results.push(
        check('sandbox-load', lint.errors.length ? 'failed' : lint.warnings.length ? 'warning' : 'passed', true, {
          entries,
          errors: lint.errors.map(issue),
          warnings: lint.warnings.map(issue),
        }),
      )
    }

    const sizes = {
      bundleBytes,
      sourceMapBytes,
      limits: { bundleBytes: SIZE_LIMITS.bundleBytes, sourceMapBytes: SIZE_LIMITS.sourceMapBytes },
    }
    const tooBig = bundleBytes > SIZE_LIMITS.bundleBytes || sourceMapBytes > SIZE_LIMITS.sourceMapBytes
    results.push(check('size-limits', tooBig ? 'failed' : 'passed', true, sizes))

    // Capabilities and permissions against the previous approved version of the same plugin.
    const approved = (await this.k.tx.read(PLATFORM_ORG, (tx) => this.k.versions.versionsOf(tx, v.name))).filter(
      (r) => r.status === 'approved' && r.id !== v.id,
    )
    const previous = approved
      .filter((r) => semver.valid(r.version) && semver.lt(r.version, v.version))
      .sort((a, b) => semver.rcompare(a.version, b.version))[0]
    const diff = capabilityDiff(manifest, previous?.manifest)
    // The prompt templates its AI calls use, and how they changed: the reviewer reads them here.
    const prompts = promptDiff(manifest, previous?.manifest)
    const promptsChanged = previous !== undefined && (prompts.added.length > 0 || prompts.changed.length > 0)
    const grows = previous !== undefined && (diff.capabilities.added.length > 0 || diff.permissions.added.length > 0)
    results.push(
      check('capability-diff', grows || promptsChanged ? 'warning' : 'passed', false, {
        against: previous ? { id: previous.id, version: previous.version } : null,
        diff,
        prompts,
      }),
    )

    results.push(await subscriptionCheck(this.k, manifest))
    results.push(await classificationCheck(this.k, manifest))

    const scan = staticScan(v.code)
    results.push(
      check('static-scan', scan.findings.length ? 'warning' : 'passed', false, {
        findings: scan.findings,
        truncated: scan.truncated,
      }),
    )
    return results
  }

  private async finish(v: Claimed, results: CheckResult[]): Promise<void> {
    const all = [...(v.checks ?? []).filter((c) => !results.some((r) => r.name === c.name)), ...results]
    const failed = all.filter((c) => c.blocking && c.status === 'failed')
    const status = failed.length ? 'failed_checks' : 'in_review'
    await this.k.tx.run(PLATFORM_ORG, async (tx) => {
      const updated = await this.k.versions.checked(tx, v.id, { status, checks: all })
      if (!updated) return // decided elsewhere meanwhile (blocked, or another process finished first)
      const data = {
        versionId: v.id,
        name: v.name,
        version: v.version,
        status,
        failed: failed.map((c) => c.name),
        warnings: all.filter((c) => c.status === 'warning').map((c) => c.name),
      }
      const actor = { kind: 'system' as const, id: 'marketplace-checks' }
      const event = { type: 'marketplace.version.checked', subject: `plugin_version/${v.id}`, data, source: SOURCE }
      await this.k.audit.append(tx, PLATFORM_ORG, {
        actor,
        action: 'marketplace.version.checked',
        target: { kind: 'plugin_version', id: v.id },
        data,
      })
      await this.k.events.emit(tx, event)
      if (v.publisher_id) {
        await tx.useOrg(v.publisher_id)
        await this.k.events.emit(tx, event)
        await tx.useOrg(PLATFORM_ORG)
      }
    })
  }
}
