import { defineErrors } from '@trellis/plugin-sdk'

/** Knowledge bases: documents, their approval, retrieval, answers and evaluation. */
export const KB = defineErrors('KB', {
  BASE_NOT_FOUND: {
    status: 404,
    title: 'No such knowledge base',
    message: (d: { kb: string }) => `knowledge base "${d.kb}" does not exist or is not visible to you`,
  },
  BASE_READ_ONLY: {
    status: 403,
    title: 'Knowledge base is read-only here',
    message: (d: { kb: string }) =>
      `knowledge base "${d.kb}" is shared with you by your partner; only the partner changes it`,
  },
  SLUG_TAKEN: {
    status: 409,
    title: 'Knowledge base slug taken',
    message: (d: { slug: string }) => `a knowledge base "${d.slug}" already exists in this organisation`,
  },
  DOCUMENT_NOT_FOUND: {
    status: 404,
    title: 'No such document',
    message: (d: { id: string }) => `document ${d.id} does not exist in this knowledge base`,
  },
  DOCUMENT_TOO_LARGE: {
    status: 413,
    title: 'Document too large',
    message: (d: { limit: string }) => `the document exceeds ${d.limit}`,
  },
  DOCUMENT_UNREADABLE: {
    status: 422,
    title: 'Document unreadable',
    message: (d: { format: string; reason: string }) => `the ${d.format} document cannot be read: ${d.reason}`,
  },
  DOCUMENT_EMPTY: {
    status: 422,
    title: 'Document has no text',
    message: (d: { format: string }) => `the ${d.format} document holds no text to retrieve`,
  },
  STATUS_TRANSITION: {
    status: 409,
    title: 'Document status cannot change that way',
    message: (d: { from: string; to: string }) => `a ${d.from} document cannot become ${d.to}`,
  },
  MODEL_UNKNOWN: {
    status: 400,
    title: 'Unknown embedding model',
    message: (d: { model: string }) => `"${d.model}" is not an embedding model this platform offers`,
  },
  NO_EVAL_QUESTIONS: {
    status: 409,
    title: 'No evaluation questions',
    message: (d: { kb: string }) => `knowledge base "${d.kb}" has no evaluation questions yet`,
  },
  ESCALATION_NOT_FOUND: {
    status: 404,
    title: 'No such escalation',
    message: (d: { id: string }) => `escalation ${d.id} does not exist`,
  },
})
