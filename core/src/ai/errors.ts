import { defineErrors } from '@trellis/plugin-sdk'

/** Governed AI: the model registry, budgets, guards and providers. */
export const AI = defineErrors('AI', {
  DISABLED: {
    status: 403,
    title: 'AI is turned off',
    message: () => 'a tenant admin has turned AI off for this tenant',
  },
  MODEL_NOT_FOUND: {
    status: 404,
    title: 'No such model',
    message: (d: { model: string }) => `no model "${d.model}" is registered`,
  },
  MODEL_NOT_OFFERED: {
    status: 403,
    title: 'Model not offered to this tenant',
    message: (d: { model: string }) => `model "${d.model}" is not among the models this tenant is offered`,
  },
  MODEL_BLOCKED: {
    status: 403,
    title: 'Model blocked',
    message: (d: { model: string }) => `model "${d.model}" is blocked by the platform`,
  },
  MODEL_KIND_MISMATCH: {
    status: 400,
    title: 'Model of the wrong kind',
    message: (d: { model: string; kind: string }) => `model "${d.model}" is not a ${d.kind} model`,
  },
  ALIAS_TAKEN: {
    status: 409,
    title: 'Model alias taken',
    message: (d: { alias: string }) => `a model with alias "${d.alias}" is already registered`,
  },
  ENDPOINT_REQUIRED: {
    status: 400,
    title: 'Endpoint required',
    message: () => 'a huggingface model needs an http(s) endpoint URL',
  },
  BUDGET_EXHAUSTED: {
    status: 429,
    title: 'AI budget exhausted',
    message: (d: { scope: string; unit: string }) => `the monthly AI budget of this ${d.scope} (${d.unit}) is used up`,
  },
  PROMPT_INJECTION: {
    status: 422,
    title: 'Prompt injection refused',
    message: (d: { where: string }) => `the ${d.where} looks like a prompt injection and this tenant blocks those`,
  },
  SCHEMA_MISMATCH: {
    status: 502,
    title: 'Model answer did not match the schema',
    message: (d: { reason: string }) => `the model's answer did not validate twice: ${d.reason}`,
  },
  TEMPLATE_UNKNOWN: {
    status: 400,
    title: 'Unknown prompt template',
    message: (d: { prompt: string }) => `prompt template "${d.prompt}" is not declared in the plugin's manifest`,
  },
  SLOT_UNDECLARED: {
    status: 400,
    title: 'Prompt slot not declared',
    message: (d: { prompt: string; slot: string }) => `prompt template "${d.prompt}" declares no slot "${d.slot}"`,
  },
  TRANSACTION_OPEN: {
    status: 409,
    title: 'AI call inside an open transaction',
    message: () =>
      "on the embedded database an AI call must come before the invocation's first data call (or run in a workflow step)",
  },
  GENERATION_EVENT_UNDECLARED: {
    status: 400,
    title: 'Generation event not declared',
    message: (d: { event: string }) =>
      `a long generation answers with one of the plugin's own events; "${d.event}" is not declared in its manifest's events.emits`,
  },
  GENERATION_ABANDONED: {
    status: 503,
    title: 'Generation abandoned',
    message: (d: { attempts: number }) =>
      `the long generation was started ${d.attempts} times and never finished (its worker stopped each time); ask again`,
  },
  PROVIDER_UNAVAILABLE: {
    status: 503,
    title: 'Model endpoint unavailable',
    message: (d: { model: string }) => `the endpoint of model "${d.model}" cannot be reached`,
  },
  PROVIDER_TIMEOUT: {
    status: 504,
    title: 'Model endpoint timed out',
    message: (d: { model: string; ms: number }) => `model "${d.model}" did not answer within ${d.ms} ms`,
  },
  PROVIDER_FAILED: {
    status: 502,
    title: 'Model endpoint failed',
    message: (d: { model: string; status?: number }) =>
      `model "${d.model}" answered with an error${d.status ? ` (HTTP ${d.status})` : ''}`,
  },
})
