import { availableParallelism } from 'node:os'
import { SpanStatusCode, trace } from '@opentelemetry/api'
import { v7 as uuidv7 } from 'uuid'
import { isTrellisError, type JsonValue } from '@trellis/plugin-sdk'
import { Sandbox, type InvocationError, type InvokeResult, type LogLine, type SandboxLimits } from '@trellis/sandbox'
import { KRN } from '../errors.js'
import type { Running } from './host-calls.js'
import type { InvokeInput } from './invocation-types.js'
import type { InvocationRecord, InvocationRecorder } from './invocation-recorder.js'
import { summarize, TranscriptBudget, TranscriptRecorder } from './invocation-transcript.js'
import type { PluginVersion } from './versions.js'

/** How the sandbox is started. */
export interface SandboxOptions {
  /** Sandbox worker processes (default: min(2, cores)). */
  sandboxWorkers?: number
  /** Defaults for every invocation's sandbox limits (CPU, wall clock, memory, host calls). */
  sandboxLimits?: Partial<SandboxLimits>
  /**
   * Successful runs per installation and minute whose record keeps the input and the host calls'
   * arguments and results (default 60; `Infinity` keeps every one). Past it a successful run keeps
   * its host calls' ops, outcomes and durations; a failed run always keeps everything (ADR 0113).
   */
  detailedTranscriptsPerMinute?: number
  /** The clock of that budget, in milliseconds (tests stop or move it). */
  transcriptClock?: () => number
}

/** A bundle as the sandbox loads it. */
export interface BundleToLoad {
  id: string
  version: string
  code: string
  sha256: string
  sourceMap?: string
}

type Entry = InvokeInput['entry']
type HostCall = (run: Running, op: string, args: unknown) => Promise<unknown>

const tracer = trace.getTracer('trellis.plugins')

/**
 * Sandboxed runs: starts the sandbox on first use, loads each version's bundle once, runs an
 * entry as a span with the tenant, plugin and version, and records every invocation (and tells
 * listeners) whatever its outcome.
 */
export class InvocationRuns {
  private sandboxStarting: Promise<Sandbox> | undefined
  private readonly loaded = new Map<string, Promise<unknown>>()
  private readonly listeners = new Set<(rec: InvocationRecord) => void>()
  private closed = false
  private readonly detailed: TranscriptBudget

  constructor(
    private readonly options: SandboxOptions,
    private readonly recorder: InvocationRecorder,
    private readonly hostCall: HostCall,
    /** Masks the personal values of an invocation in its record (core/src/governance/personal-masking.ts). */
    private readonly maskPersonal: (run: Running, value: unknown) => unknown = (_run, value) => value,
  ) {
    this.detailed = new TranscriptBudget(options.detailedTranscriptsPerMinute, options.transcriptClock)
  }

  /** Calls `listener` with every invocation record as it is made; returns an unsubscribe function. */
  onInvocation(listener: (rec: InvocationRecord) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** The sandbox, started on first use. */
  sandbox(): Promise<Sandbox> {
    if (this.closed) throw KRN.INTERNAL()
    this.sandboxStarting ??= Sandbox.create({
      workers: this.options.sandboxWorkers ?? Math.min(2, availableParallelism()),
      quietWorkers: true,
      ...(this.options.sandboxLimits ? { limits: this.options.sandboxLimits } : {}),
    })
    return this.sandboxStarting
  }

  /** Loads a version's bundle in the sandbox (once) and returns the entries it declares. */
  async probe(bundle: BundleToLoad): Promise<Record<string, string[]>> {
    const sandbox = await this.sandbox()
    return (await sandbox.load(bundle)).entries
  }

  /** Loads the version's bundle unless it already is. */
  ensureLoaded(v: PluginVersion): Promise<unknown> {
    let p = this.loaded.get(v.id)
    if (!p) {
      p = this.probe({
        id: v.name,
        version: v.version,
        code: v.code,
        sha256: v.sha256,
        ...(v.sourceMap ? { sourceMap: v.sourceMap } : {}),
      })
      this.loaded.set(v.id, p)
      p.catch(() => this.loaded.delete(v.id))
    }
    return p
  }

  /** One sandboxed run within an invocation tree, as a span; the tree knows it runs until it ends. */
  run(run: Running, entry: Entry, input: unknown): Promise<unknown> {
    return tracer.startActiveSpan(
      `plugin ${entry.kind} ${entry.name}`,
      {
        attributes: {
          'tenant.id': run.tree.tenantId,
          'plugin.id': run.inst.plugin,
          'plugin.version': run.version.version,
          'plugin.installation': run.inst.id,
          'plugin.entry': `${entry.kind} ${entry.name}`,
        },
      },
      async (span) => {
        try {
          const running = this.runInSandbox(run, entry, input)
          const runs = run.tree.runs
          runs.add(running)
          const gone = () => runs.delete(running)
          running.then(gone, gone)
          return await running
        } catch (err) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: isTrellisError(err) ? err.code : 'error' })
          throw err
        } finally {
          span.end()
        }
      },
    )
  }

  private async runInSandbox(run: Running, entry: Entry, input: unknown): Promise<unknown> {
    await this.ensureLoaded(run.version)
    const sandbox = await this.sandbox()
    const invocationId = uuidv7()
    const startedAt = new Date().toISOString()
    const transcript = new TranscriptRecorder()
    const record = (res: Pick<InvokeResult, 'metrics' | 'logs'> | undefined, error?: string) => {
      const rec = invocationRecord(run, entry, invocationId, startedAt, res, error)
      // Summaries and their masking are most of a record's cost: a successful run past its
      // installation's budget keeps the outline of its host calls only, unless someone opened
      // the installation's detail window.
      if (error || detailWindowOpen(run.inst.detailUntil) || this.detailed.take(run.inst.id)) {
        rec.input = this.maskPersonal(run, summarize(input))
        rec.transcript = this.maskPersonal(run, transcript.transcript()) as typeof rec.transcript
      } else rec.transcript = transcript.outline()
      rec.logs = this.maskPersonal(run, rec.logs) as typeof rec.logs
      for (const l of this.listeners) l(rec)
      this.recorder.record(rec)
    }
    try {
      const result = await sandbox.invoke({
        bundle: { id: run.version.name, version: run.version.version },
        entry,
        input,
        context: {
          invocationId,
          tenantId: run.tree.tenantId,
          installationId: run.inst.id,
          caller: run.caller,
          capabilities: run.inst.capabilities,
          settings: run.inst.settings as Record<string, JsonValue>,
        },
        onHostCall: (op, args) => transcript.around(op, args, () => this.hostCall(run, op, args)),
      })
      record(result)
      return result.output
    } catch (err) {
      const e = err as InvocationError
      record(
        e.metrics ? { metrics: e.metrics, logs: e.logs ?? [] } : undefined,
        isTrellisError(err) ? err.code : 'KRN_ERR_INTERNAL',
      )
      throw err
    }
  }

  async close(): Promise<void> {
    this.closed = true
    const sandbox = await this.sandboxStarting?.catch(() => undefined)
    await sandbox?.close()
  }
}

/** Whether an installation's detail window (`detailUntil`) is open now. */
const detailWindowOpen = (until: string | null) => until !== null && Date.parse(until) > Date.now()

function invocationRecord(
  run: Running,
  entry: Entry,
  id: string,
  startedAt: string,
  res: Pick<InvokeResult, 'metrics' | 'logs'> | undefined,
  error: string | undefined,
): InvocationRecord {
  return {
    id,
    tenantId: run.tree.tenantId,
    installationId: run.inst.id,
    plugin: run.inst.plugin,
    version: run.version.version,
    entryKind: entry.kind,
    entryName: entry.name,
    callerKind: run.caller.kind,
    callerId: run.caller.id,
    startedAt,
    wallMs: res?.metrics?.wallMs ?? 0,
    cpuMs: res?.metrics?.cpuMs ?? 0,
    hostCalls: res?.metrics?.hostCalls ?? 0,
    outcome: error ? 'error' : 'ok',
    errorCode: error ?? null,
    logs: (res?.logs ?? []).map((l: LogLine) => ({
      level: l.level,
      message: l.message,
      ...(l.fields ? { fields: l.fields } : {}),
      time: l.time,
    })),
  }
}
