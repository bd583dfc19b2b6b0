import type { InferenceClient } from '@huggingface/inference'
import type { EgressGuard } from '../../egress/index.js'
import type { AiPassage } from '../service.js'
import { guardedFetch } from './guarded-fetch.js'
import type { ChatAnswer, ChatRequest, Provider, ProviderCallOptions, ResolvedModel } from './types.js'

/** Formats numbered passages into the system prompt and tells the model to cite them as `[n]`. */
export function passagePrompt(passages: AiPassage[]): string {
  return [
    'Answer only from the numbered passages below. After each statement cite the passage it comes from as [n].',
    'If the passages do not answer the question, say you do not know.',
    '',
    ...passages.map((p) => `[${p.n}] ${p.text}`),
  ].join('\n')
}

/** The `[n]` citations in an answer, distinct, in order of first use. */
export function parseCitations(text: string): number[] {
  const seen: number[] = []
  for (const m of text.matchAll(/\[(\d{1,3})\]/g)) {
    const n = Number(m[1])
    if (!seen.includes(n)) seen.push(n)
  }
  return seen
}

/**
 * `@huggingface/inference`'s `InferenceClient` against the model's own endpoint (Hugging Face
 * endpoints, TGI, vLLM, llama.cpp's server, Ollama's OpenAI-compatible API), its `fetch`
 * confined to that endpoint's host through the egress guard. The client's own 503 retry loop is
 * off: the AI service retries a bounded number of times itself.
 */
export function huggingfaceProvider(guard: EgressGuard): Provider {
  const clients = new Map<string, InferenceClient>()
  // The client is loaded on the first call to a remote model: a kernel on the local provider
  // (the embedded default) never needs it, and it is a good part of a process's start.
  const client = async (m: ResolvedModel) => {
    const key = `${m.id}|${m.endpointUrl}|${m.credential ?? ''}`
    let c = clients.get(key)
    if (!c) {
      const { InferenceClient } = await import('@huggingface/inference')
      if (clients.size > 64) clients.clear()
      c = new InferenceClient(m.credential ?? undefined, {
        endpointUrl: m.endpointUrl!,
        fetch: guardedFetch(guard, m.endpointUrl!),
        retry_on_error: false,
      })
      clients.set(key, c)
    }
    return c
  }
  return {
    async chat(m: ResolvedModel, req: ChatRequest, opts: ProviderCallOptions): Promise<ChatAnswer> {
      const messages = req.passages?.length
        ? [{ role: 'system' as const, content: passagePrompt(req.passages) }, ...req.messages]
        : req.messages
      const args = {
        model: m.modelId,
        messages: messages.map((x) => ({ role: x.role, content: x.content })),
        ...(req.maxTokens ? { max_tokens: req.maxTokens } : {}),
        ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      }
      let text = ''
      let usage: ChatAnswer['usage']
      let model: string | undefined
      if (opts.onToken) {
        for await (const chunk of (await client(m)).chatCompletionStream(args, { signal: opts.signal })) {
          const delta = chunk.choices?.[0]?.delta?.content ?? ''
          if (delta) {
            text += delta
            opts.onToken(delta)
          }
          model ??= chunk.model
          if (chunk.usage)
            usage = { inputTokens: chunk.usage.prompt_tokens ?? 0, outputTokens: chunk.usage.completion_tokens ?? 0 }
        }
      } else {
        const out = await (await client(m)).chatCompletion(args, { signal: opts.signal })
        text = out.choices?.[0]?.message?.content ?? ''
        model = out.model
        if (out.usage)
          usage = { inputTokens: out.usage.prompt_tokens ?? 0, outputTokens: out.usage.completion_tokens ?? 0 }
      }
      return { text, citations: req.passages?.length ? parseCitations(text) : undefined, usage, model }
    },
    async embed(m: ResolvedModel, texts: string[], opts: ProviderCallOptions): Promise<number[][]> {
      const out = await (await client(m)).featureExtraction(
        { model: m.modelId, inputs: texts },
        { signal: opts.signal },
      )
      if (!Array.isArray(out) || !out.every((v) => Array.isArray(v) && v.every((x) => typeof x === 'number')))
        throw Object.assign(new Error('the endpoint did not answer one vector per text'), { code: 'BAD_OUTPUT' })
      return out as number[][]
    },
  }
}
