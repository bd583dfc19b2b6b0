import type { Database, Tx } from '../db/database.js'
import type { AiService } from '../ai/service.js'
import { type Embed, embedder } from './embedding.js'
import { detectVector } from './retrieval.js'

/**
 * What the knowledge routes and host calls share: the embedder (the AI service's when there is
 * one, the local lexical model otherwise) and whether the database has pgvector.
 */
export class KnowledgeService {
  readonly embed: Embed
  private vector: boolean | undefined

  constructor(
    private readonly db: Pick<Database, 'inOrg'>,
    readonly ai?: AiService,
  ) {
    this.embed = embedder(ai)
  }

  /** Whether vectors are pgvector's (else the exact real[] scan); asked of the database once. */
  async hasVector(tx?: Tx): Promise<boolean> {
    if (this.vector === undefined) this.vector = tx ? await detectVector(tx) : await this.db.inOrg(null, detectVector)
    return this.vector
  }

  /** The answer and search dependencies, resolved. */
  async deps(tx: Tx): Promise<{ embed: Embed; ai?: AiService; hasVector: boolean }> {
    return { embed: this.embed, ...(this.ai ? { ai: this.ai } : {}), hasVector: await this.hasVector(tx) }
  }
}
