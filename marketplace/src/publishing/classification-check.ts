/**
 * The `data-classification` check: which fields of each collection the version classifies
 * (`public` … `sensitive-personal`) and which it leaves unclassified, for the reviewer. While the
 * platform's policy requires classification, a version with an unclassified collection field
 * fails the check (blocking) and never reaches review; otherwise it is a warning.
 */
import { classificationSummary, type PluginManifest } from '@trellis/plugin-sdk'
import { PLATFORM_ORG } from '@trellis/core'
import { check, type CheckResult } from './checks.js'
import type { Services } from '../services.js'
import { classificationRequired } from '../governance/classification-policy.js'

/** The check's result for `manifest` under the platform's current policy. */
export async function classificationCheck(k: Services, manifest: PluginManifest): Promise<CheckResult> {
  const required = await k.tx.read(PLATFORM_ORG, (tx) => classificationRequired(tx))
  const summary = classificationSummary(manifest)
  const status = summary.unclassified === 0 ? 'passed' : required ? 'failed' : 'warning'
  return check('data-classification', status, required, {
    required,
    ...summary,
    ...(status === 'failed'
      ? { reason: 'the platform requires every collection field to be classified (docs/governance.md)' }
      : {}),
  })
}
