import { embedLexical, LEXICAL_DIMS, LEXICAL_MODEL } from '../ai/local/lexical-embedder.js'
import type { AiService, AiWithin } from '../ai/service.js'
import { KB } from './errors.js'

/** The embedding models a knowledge base may use without an AI endpoint, and their sizes. */
export const LOCAL_EMBEDDING_MODELS: Record<string, number> = {
  [LEXICAL_MODEL]: LEXICAL_DIMS,
  [`${LEXICAL_MODEL}-256`]: 256,
}

export interface Embedded {
  vectors: number[][]
  model: string
  dims: number
}

/** A plugin on whose behalf knowledge calls the AI service (recorded and budgeted as its installation's). */
export interface PluginVia {
  installationId: string
  pluginId: string
  /** The invocation's open transaction on the embedded database. */
  within?: AiWithin
}

/** Embeds texts for an organisation with a base's model: through the AI service when there is one. */
export type Embed = (
  orgId: string,
  model: string,
  texts: string[],
  userId?: string | null,
  via?: PluginVia,
) => Promise<Embedded>

export function embedder(ai: AiService | undefined): Embed {
  return async (orgId, model, texts, userId, via) => {
    const dims = LOCAL_EMBEDDING_MODELS[model]
    if (dims !== undefined) return { vectors: embedLexical(texts, dims), model, dims }
    if (!ai) throw KB.MODEL_UNKNOWN({ model })
    const out = await ai.embed(
      {
        tenantId: orgId,
        userId: userId ?? null,
        feature: via ? `${via.pluginId}:knowledge` : 'knowledge',
        ...(via ? { installationId: via.installationId, pluginId: via.pluginId } : {}),
      },
      texts,
      { model, ...(via?.within ? { within: via.within } : {}) },
    )
    return { vectors: out.vectors, model: out.model, dims: out.dims }
  }
}

/** A vector as a PostgreSQL array literal (`real[]`; pgvector casts it to `vector`). */
export function vectorLiteral(vector: readonly number[]): string {
  return `{${vector.map((v) => (v === 0 ? '0' : v.toPrecision(6))).join(',')}}`
}
