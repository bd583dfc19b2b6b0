import { Cron } from 'croner'
import { pointerSegment, type ManifestIssue, type ManifestWorkflow, type PluginManifest } from '@trellis/plugin-sdk'

/** When a scheduled workflow starts next. */
export interface Schedule {
  /** The first start strictly after `after` (ms since the epoch); undefined when there is none. */
  next(after: number): number | undefined
  /** How it reads in logs: `every 60000 ms`, `cron "0 2 * * *" in Europe/Berlin`. */
  readonly label: string
}

/**
 * The schedule a workflow's `start` declares — `everyMs`, or `cron` (five fields, or a nickname
 * such as `@daily`) in `timeZone` (an IANA zone; UTC when absent) — or undefined when it has
 * none. Throws when the expression or the zone does not parse. Cron times follow the zone's
 * wall clock: `0 2 * * *` in Europe/Berlin starts at 02:00 local time whether that is UTC+1 or
 * UTC+2; on the night the clocks skip 02:00 it starts at 03:00, and on the night they repeat
 * it, once, at the first 02:00.
 */
export function scheduleOf(start: ManifestWorkflow['start']): Schedule | undefined {
  if (start?.cron) {
    const zone = start.timeZone ?? 'UTC'
    const cron = new Cron(start.cron, { timezone: zone, paused: true })
    // An unknown zone only shows when a time is computed.
    cron.nextRun(new Date(0))
    return {
      label: `cron "${start.cron}" in ${zone}`,
      next: (after) => cron.nextRun(new Date(after))?.getTime(),
    }
  }
  const every = start?.everyMs
  if (!every) return undefined
  return { label: `every ${every} ms`, next: (after) => after + every }
}

/** The workflows whose schedule the kernel cannot read (an impossible field, an unknown zone), as manifest errors. */
export function scheduleIssues(manifest: PluginManifest): ManifestIssue[] {
  const issues: ManifestIssue[] = []
  for (const [name, wf] of Object.entries(manifest.workflows ?? {})) {
    try {
      scheduleOf(wf.start)
    } catch (err) {
      const pointer = `/workflows/${pointerSegment(name)}/start`
      issues.push({ pointer, message: (err as Error).message, rule: 'schedule', severity: 'error' })
    }
  }
  return issues
}
