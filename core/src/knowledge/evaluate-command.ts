import type { KernelConfig } from '../config.js'
import { openMigratedDatabase } from '../cli/open-database.js'
import { evaluateBase } from './monitoring.js'
import { KnowledgeService } from './service.js'
import { findBase } from './store.js'

/**
 * `trellis knowledge evaluate`: runs a base's stored test questions through retrieval in the
 * organisation's own transaction (row-level security applies) and prints hit rate at k and MRR.
 */
export async function runKnowledgeEvaluate(
  config: KernelConfig,
  opts: { tenant: string; kb: string; k?: string; roles?: string; json?: boolean },
  out: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Promise<void> {
  const db = await openMigratedDatabase(config)
  try {
    const knowledge = new KnowledgeService(db)
    const k = Math.max(1, Math.min(10, Number(opts.k ?? 3) || 3))
    const roles = opts.roles
      ? opts.roles
          .split(',')
          .map((r) => r.trim())
          .filter(Boolean)
      : []
    const { base, deps } = await db.inOrg(opts.tenant, async (tx) => ({
      base: await findBase(tx, opts.tenant, opts.kb),
      deps: await knowledge.deps(tx),
    }))
    const report = await evaluateBase((fn) => db.inOrg(opts.tenant, fn), deps, base, opts.tenant, roles, k)
    if (opts.json) out(JSON.stringify(report, null, 2))
    else {
      out(`questions ${report.questions}  hit@${report.k} ${report.hitRate.toFixed(3)}  MRR ${report.mrr.toFixed(3)}`)
      for (const miss of report.misses) out(`miss  ${miss.question}  (expected: ${miss.expect})`)
    }
  } finally {
    await db.close()
  }
}
