import type { HostOps } from '@trellis/plugin-sdk'
import type { Tx } from '../db/database.js'
import { appendAudit } from '../audit/audit-log.js'
import type { AiWithin } from '../ai/service.js'
import { memberRoles } from '../workflows/task-access.js'
import { ask } from './answer.js'
import type { PluginVia } from './embedding.js'
import { searchBase } from './retrieval.js'
import type { KnowledgeService } from './service.js'
import { findBase, ownBase, prepareDocument, writeDocument } from './store.js'

/** What a knowledge host call needs of the invocation that makes it. */
export interface KnowledgeInvocation {
  tenantId: string
  installationId: string
  pluginId: string
  /** Who the invocation acts for: a user's roles trim what is retrieved; anyone else reads unrestricted documents only. */
  caller: { kind: string; id: string }
  /** Runs in the invocation's transaction (opening it if needed). */
  inTx: <T>(fn: (tx: Tx) => Promise<T>) => Promise<T>
  /** Set once the invocation holds the embedded database's only connection (see ADR 0057). */
  within: () => AiWithin | undefined
}

/** Knowledge host operations a plugin may make. */
export type KnowledgeOp = 'knowledge.search' | 'knowledge.ask' | 'knowledge.write'

async function rolesFor(tx: Tx, inv: KnowledgeInvocation): Promise<string[]> {
  return inv.caller.kind === 'user' ? memberRoles(tx, inv.caller.id, inv.tenantId) : []
}

const userOf = (inv: KnowledgeInvocation) => (inv.caller.kind === 'user' ? inv.caller.id : null)

function via(inv: KnowledgeInvocation): PluginVia {
  const within = inv.within()
  return { installationId: inv.installationId, pluginId: inv.pluginId, ...(within ? { within } : {}) }
}

/**
 * `ctx.knowledge.*` for sandboxed plugins (the capability was checked by the host): search and
 * ask see exactly what the invoking user could see through `/v1/knowledge` — the tenant's
 * bases and its partner's shared ones by RLS, approved current documents only, trimmed by the
 * user's roles — and write adds a draft a knowledge owner must approve. Reads and writes run in
 * the invocation's transaction; model calls go through the AI service as the plugin's
 * installation (budgeted, recorded, audited).
 */
export async function knowledgeCall(
  knowledge: KnowledgeService,
  inv: KnowledgeInvocation,
  op: KnowledgeOp,
  args: unknown,
): Promise<unknown> {
  if (op === 'knowledge.search') {
    const a = args as HostOps['knowledge.search']['args']
    const base = await inv.inTx((tx) => findBase(tx, inv.tenantId, a.kb))
    const { vectors } = await knowledge.embed(inv.tenantId, base.embedding_model, [a.query], userOf(inv), via(inv))
    const items = await inv.inTx(async (tx) =>
      searchBase(
        tx,
        base,
        vectors[0] as number[],
        a.query,
        await rolesFor(tx, inv),
        a.k ?? 5,
        { tags: a.tags },
        await knowledge.searchPath(tx),
      ),
    )
    return { items }
  }
  if (op === 'knowledge.ask') {
    const a = args as HostOps['knowledge.ask']['args']
    const { base, roles, deps } = await inv.inTx(async (tx) => ({
      base: await findBase(tx, inv.tenantId, a.kb),
      roles: await rolesFor(tx, inv),
      deps: await knowledge.deps(tx),
    }))
    return ask(inv.inTx, deps, base, { orgId: inv.tenantId, userId: userOf(inv), roles, via: via(inv) }, a.question, {
      k: a.k,
      filters: { tags: a.tags },
    })
  }
  const a = args as HostOps['knowledge.write']['args']
  const { kb, ...input } = a
  const owned = await inv.inTx((tx) => ownBase(tx, inv.tenantId, kb))
  // Parsing, chunking and embedding hold no statement; the write and its audit entry are the invocation's.
  const prepared = await prepareDocument(owned, input, knowledge.embed, userOf(inv), via(inv))
  return inv.inTx(async (tx) => {
    const d = await writeDocument(tx, owned, input, prepared, userOf(inv), await knowledge.hasVector(tx))
    await appendAudit(tx, inv.tenantId, {
      action: 'knowledge.document.added',
      actor: { kind: 'plugin', id: inv.installationId },
      target: { kind: 'knowledge_document', id: d.id },
      data: {
        kb: owned.slug,
        source: d.source,
        version: d.version,
        chunks: d.chunk_count,
        plugin: inv.pluginId,
        ...(userOf(inv) ? { user: userOf(inv) } : {}),
      },
    })
    return { id: d.id, title: d.title, source: d.source, version: d.version, status: 'draft', chunks: d.chunk_count }
  })
}
