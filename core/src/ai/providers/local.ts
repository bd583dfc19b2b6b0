import { answerExtractively, EXTRACTIVE_MODEL, NO_ANSWER_TEXT } from '../local/extractive-answerer.js'
import { embedLexical } from '../local/lexical-embedder.js'
import type { ChatAnswer, ChatRequest, Provider } from './types.js'

/**
 * The embedded default, honest about what it is: embeddings are lexical feature hashes, and the
 * chat model writes nothing of its own — it answers from the passages it is given, verbatim with
 * citations, or escalates. Every answer names `local-extractive` as its model.
 */
export const localProvider: Provider = {
  async chat(_model, req: ChatRequest): Promise<ChatAnswer> {
    const question = [...req.messages].reverse().find((m) => m.role === 'user')?.content ?? ''
    if (!req.passages?.length) return { text: NO_ANSWER_TEXT, citations: [], escalate: true, model: EXTRACTIVE_MODEL }
    const a = answerExtractively(question, req.passages)
    return { text: a.text, citations: a.citations, escalate: !a.answered, model: EXTRACTIVE_MODEL }
  },
  async embed(_model, texts) {
    return embedLexical(texts)
  },
}
