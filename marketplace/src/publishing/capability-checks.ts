/**
 * The capability checks of a submission. Refused at upload (nothing stored, the refusal
 * audited): `http:fetch` hosts naming loopback, private, link-local or metadata destinations the
 * operator has not allow-listed, and subscriptions to the platform's event namespaces. Flagged
 * for the reviewer (a non-blocking `event-subscriptions` warning in the review queue): patterns
 * over every namespace, wildcards over another plugin's namespace, namespaces nobody declares.
 */
import { internalFetchTargets, subscriptionFindings, ownEventNamespace, type PluginManifest } from '@trellis/plugin-sdk'
import { MKT } from '../errors.js'
import { check, type CheckResult } from './checks.js'
import { PLATFORM_ORG } from '@trellis/core'
import type { Services } from '../services.js'

/** Throws MKT_ERR_CAPABILITY_INTERNAL_HOST or MKT_ERR_SUBSCRIPTION_RESERVED; else the passed `capabilities` check. */
export function refuseUngrantable(k: Services, manifest: PluginManifest): CheckResult {
  const internal = internalFetchTargets(manifest.capabilities, (t) => k.plugins.egressAllows(t))
  if (internal.length)
    throw MKT.CAPABILITY_INTERNAL_HOST({
      hosts: internal.map((i) => ({ capability: i.capability, host: i.entry, reason: i.reason })),
    })
  const reserved = subscriptionFindings(manifest).filter((f) => f.rule === 'reserved')
  if (reserved.length) throw MKT.SUBSCRIPTION_RESERVED({ patterns: reserved.map((f) => f.pattern) })
  return check('capabilities', 'passed', true, { capabilities: manifest.capabilities })
}

/** Namespaces other plugins declare events in (their own namespace and their `events.emits`), from approved versions. */
async function declaredNamespaces(k: Services, plugin: string): Promise<Set<string>> {
  const rows = (await k.tx.read(PLATFORM_ORG, (tx) => k.versions.inStatus(tx, 'approved'))).filter(
    (v) => v.name !== plugin,
  )
  const out = new Set<string>()
  for (const r of rows) {
    out.add(ownEventNamespace(r.name))
    for (const e of Object.keys(r.manifest.events?.emits ?? {})) out.add(e.split('.')[0]!)
  }
  return out
}

/** The `event-subscriptions` check: warnings the review queue shows, never blocking. */
export async function subscriptionCheck(k: Services, manifest: PluginManifest): Promise<CheckResult> {
  const findings = subscriptionFindings(manifest, await declaredNamespaces(k, manifest.name)).filter(
    (f) => f.rule !== 'reserved',
  )
  return check('event-subscriptions', findings.length ? 'warning' : 'passed', false, { findings })
}
