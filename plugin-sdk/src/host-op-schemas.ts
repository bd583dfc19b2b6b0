/**
 * JSON Schemas of every host operation's `args` — the machine-checkable half of
 * {@link HostOps}. Plugin code is untrusted: the kernel validates each host call's args with
 * these (`validateHostCall`) before checking capabilities, and the SDK's tests check that the
 * runtime only ever sends args that pass.
 */
import type { HostOp } from './protocol.js'

const name = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_-]{0,63}$' }
const id = { type: 'string', minLength: 1, maxLength: 256 }
const record = { type: 'object' }
const field = { type: 'string', minLength: 1, maxLength: 128 }
const kb = { type: 'string', minLength: 1, maxLength: 100 }
const grain = { enum: ['day', 'week', 'month', 'quarter', 'year'] }
const date = { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' }
const metric = { type: 'string', minLength: 1, maxLength: 200 }
const scalar = { type: ['string', 'number', 'boolean'] }
const metricFilter = {
  type: 'object',
  maxProperties: 16,
  additionalProperties: { anyOf: [scalar, { type: 'array', minItems: 1, maxItems: 1000, items: scalar }] },
}
const tags = { type: 'array', maxItems: 50, items: { type: 'string', minLength: 1, maxLength: 100 } }

/** What `ai.complete` and `ai.generate` both take. */
const aiRequest = {
  model: { type: 'string', minLength: 1, maxLength: 64 },
  messages: {
    type: 'array',
    minItems: 1,
    maxItems: 100,
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['role', 'content'],
      properties: {
        role: { enum: ['system', 'user', 'assistant'] },
        content: { type: 'string', maxLength: 100_000 },
      },
    },
  },
  prompt: name,
  slots: { type: 'object', maxProperties: 50, additionalProperties: { type: 'string', maxLength: 50_000 } },
  maxTokens: { type: 'integer', minimum: 1, maximum: 32_000 },
  schema: { type: 'object' },
  temperature: { type: 'number', minimum: 0, maximum: 2 },
}

/** `args` schema per host operation (draft 2020-12). */
export const HOST_OP_SCHEMAS: Readonly<Record<HostOp, Readonly<Record<string, unknown>>>> = Object.freeze({
  'data.insert': {
    type: 'object',
    additionalProperties: false,
    required: ['collection', 'record'],
    properties: { collection: name, record },
  },
  'data.get': {
    type: 'object',
    additionalProperties: false,
    required: ['collection', 'id'],
    properties: { collection: name, id },
  },
  'data.update': {
    type: 'object',
    additionalProperties: false,
    required: ['collection', 'id', 'patch', 'expectedVersion'],
    properties: { collection: name, id, patch: record, expectedVersion: { type: 'integer', minimum: 1 } },
  },
  'data.delete': {
    type: 'object',
    additionalProperties: false,
    required: ['collection', 'id'],
    properties: { collection: name, id },
  },
  'data.find': {
    type: 'object',
    additionalProperties: false,
    required: ['collection', 'query'],
    properties: {
      collection: name,
      query: {
        type: 'object',
        additionalProperties: false,
        properties: {
          where: { $ref: '#/$defs/filter' },
          sort: {
            type: 'array',
            maxItems: 8,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['field'],
              properties: { field, direction: { enum: ['asc', 'desc'] } },
            },
          },
          cursor: { type: 'string', maxLength: 4096 },
          limit: { type: 'integer', minimum: 1, maximum: 1000 },
        },
      },
    },
    $defs: {
      filter: {
        type: 'object',
        properties: {
          and: { type: 'array', minItems: 1, items: { $ref: '#/$defs/filter' } },
          or: { type: 'array', minItems: 1, items: { $ref: '#/$defs/filter' } },
        },
        additionalProperties: {
          anyOf: [
            { not: { type: 'object' } },
            {
              type: 'object',
              minProperties: 1,
              additionalProperties: false,
              properties: {
                eq: true,
                ne: true,
                in: { type: 'array', maxItems: 1000 },
                lt: true,
                lte: true,
                gt: true,
                gte: true,
                prefix: { type: 'string' },
                contains: true,
              },
            },
          ],
        },
      },
    },
  },
  'events.emit': {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'data'],
    properties: {
      type: { type: 'string', pattern: '^[a-z][a-z0-9-]*(\\.[a-z][a-zA-Z0-9-]*){2,}$', maxLength: 256 },
      data: true,
      subject: { type: 'string', maxLength: 256 },
    },
  },
  'plugins.call': {
    type: 'object',
    additionalProperties: false,
    required: ['plugin', 'action', 'input'],
    properties: {
      plugin: { type: 'string', pattern: '^@[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*$' },
      action: name,
      input: true,
    },
  },
  'http.fetch': {
    type: 'object',
    additionalProperties: false,
    required: ['url', 'method', 'headers', 'body'],
    properties: {
      url: { type: 'string', pattern: '^https?://', maxLength: 8192 },
      method: { enum: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] },
      headers: {
        type: 'object',
        additionalProperties: { type: 'string' },
        propertyNames: { pattern: "^[a-z0-9!#$%&'*+.^_`|~-]+$" },
      },
      body: { type: ['string', 'null'] },
    },
  },
  'secrets.get': {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: { name: { type: 'string', minLength: 1, maxLength: 128 } },
  },
  'workflows.start': {
    type: 'object',
    additionalProperties: false,
    required: ['workflow', 'input'],
    properties: { workflow: name, input: true, startKey: { type: 'string', minLength: 1, maxLength: 256 } },
  },
  'ai.complete': {
    type: 'object',
    additionalProperties: false,
    oneOf: [{ required: ['messages'] }, { required: ['prompt'] }],
    properties: aiRequest,
  },
  'ai.generate': {
    type: 'object',
    additionalProperties: false,
    required: ['event'],
    oneOf: [{ required: ['messages'] }, { required: ['prompt'] }],
    properties: { ...aiRequest, event: { type: 'string', minLength: 1, maxLength: 200 } },
  },
  'ai.embed': {
    type: 'object',
    additionalProperties: false,
    required: ['texts'],
    properties: {
      texts: { type: 'array', minItems: 1, maxItems: 256, items: { type: 'string', maxLength: 20_000 } },
      model: { type: 'string', minLength: 1, maxLength: 64 },
    },
  },
  'knowledge.search': {
    type: 'object',
    additionalProperties: false,
    required: ['kb', 'query'],
    properties: {
      kb,
      query: { type: 'string', minLength: 1, maxLength: 2000 },
      k: { type: 'integer', minimum: 1, maximum: 50 },
      tags,
    },
  },
  'knowledge.ask': {
    type: 'object',
    additionalProperties: false,
    required: ['kb', 'question'],
    properties: {
      kb,
      question: { type: 'string', minLength: 1, maxLength: 2000 },
      k: { type: 'integer', minimum: 1, maximum: 20 },
      tags,
    },
  },
  'knowledge.write': {
    type: 'object',
    additionalProperties: false,
    required: ['kb', 'title', 'source', 'format', 'content'],
    properties: {
      kb,
      title: { type: 'string', minLength: 1, maxLength: 500 },
      source: { type: 'string', minLength: 1, maxLength: 1000 },
      format: { enum: ['text', 'markdown', 'html', 'pdf', 'csv'] },
      content: { type: 'string', maxLength: 8_000_000 },
      owner: { type: 'string', maxLength: 200 },
      tags,
      classification: { type: 'string', maxLength: 100 },
      roles: tags,
    },
  },
  'metrics.query': {
    type: 'object',
    additionalProperties: false,
    required: ['metric'],
    properties: {
      metric,
      grain,
      groupBy: { type: 'array', maxItems: 4, items: { type: 'string', minLength: 1, maxLength: 100 } },
      filter: metricFilter,
      from: date,
      to: date,
      limit: { type: 'integer', minimum: 1, maximum: 10_000 },
    },
  },
  'metrics.forecast': {
    type: 'object',
    additionalProperties: false,
    required: ['metric', 'grain'],
    properties: {
      metric,
      grain,
      horizon: { type: 'integer', minimum: 1, maximum: 36 },
      season: { type: 'integer', minimum: 0, maximum: 366 },
      filter: metricFilter,
      from: date,
      to: date,
    },
  },
})
