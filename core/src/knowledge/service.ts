import type { Database, Tx } from '../db/database.js'
import type { AiService } from '../ai/service.js'
import { type Embed, embedder } from './embedding.js'
import { BaseIndexes, type BaseIndexOptions } from './base-index.js'
import { detectVector, type SearchPath } from './retrieval.js'

/**
 * What the knowledge routes and host calls share: the embedder (the AI service's when there is
 * one, the local lexical model otherwise) and whether the database has pgvector.
 */
export class KnowledgeService {
  readonly embed: Embed
  /** The process's cache of bases' chunks (vectors without pgvector, term frequencies always). */
  readonly indexes: BaseIndexes
  private vector: boolean | undefined

  constructor(
    private readonly db: Pick<Database, 'inOrg'>,
    readonly ai?: AiService,
    options: BaseIndexOptions = {},
  ) {
    this.embed = embedder(ai)
    this.indexes = new BaseIndexes(options)
  }

  /** Whether vectors are pgvector's (else the exact real[] scan); asked of the database once. */
  async hasVector(tx?: Tx): Promise<boolean> {
    if (this.vector === undefined) this.vector = tx ? await detectVector(tx) : await this.db.inOrg(null, detectVector)
    return this.vector
  }

  /** How this database ranks by vectors, with the process's cache. */
  async searchPath(tx?: Tx): Promise<SearchPath> {
    return { hasVector: await this.hasVector(tx), indexes: this.indexes }
  }

  /** The answer and search dependencies, resolved. */
  async deps(tx: Tx): Promise<{ embed: Embed; ai?: AiService; hasVector: boolean; path: SearchPath }> {
    const path = await this.searchPath(tx)
    return { embed: this.embed, ...(this.ai ? { ai: this.ai } : {}), hasVector: path.hasVector, path }
  }
}
