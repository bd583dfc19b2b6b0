import type { AiMessage, AiPassage } from '../service.js'

/** A registered model as the providers need it (the credential opened). */
export interface ResolvedModel {
  id: string
  alias: string
  kind: 'chat' | 'embedding'
  provider: 'huggingface' | 'local'
  endpointUrl: string | null
  modelId: string
  credential: string | null
  priceInMicros: number
  priceOutMicros: number
}

export interface ChatRequest {
  messages: AiMessage[]
  /** Already masked; the huggingface provider numbers them into the prompt, the local one answers from them. */
  passages?: AiPassage[]
  maxTokens?: number
  temperature?: number
}

export interface ChatAnswer {
  text: string
  /** Citations the provider parsed or produced (unchecked against the passages). */
  citations?: number[]
  escalate?: boolean
  /** Token counts the endpoint reported, when it did. */
  usage?: { inputTokens: number; outputTokens: number }
  /** The model name the endpoint or provider says answered. */
  model?: string
}

export interface ProviderCallOptions {
  signal: AbortSignal
  /** Streamed tokens, where the endpoint streams. */
  onToken?: (token: string) => void
}

export interface Provider {
  chat(model: ResolvedModel, req: ChatRequest, opts: ProviderCallOptions): Promise<ChatAnswer>
  embed(model: ResolvedModel, texts: string[], opts: ProviderCallOptions): Promise<number[][]>
}
