import http from 'node:http'
import type { AddressInfo } from 'node:net'

/** One request the server received, as it arrived. */
export interface ReceivedRequest {
  path: string
  headers: http.IncomingHttpHeaders
  body: any
  raw: string
}

export interface InferenceServer {
  url: string
  /** Every request received, in order. */
  received: ReceivedRequest[]
  /** What the chat endpoint answers, from the request's messages (default: a short answer citing [1]). */
  reply: (messages: Array<{ role: string; content: string }>) => string
  /** `ok`; `down` answers 503; `error` answers 500 with a JSON error; `slow` waits `delayMs` first. */
  mode: 'ok' | 'down' | 'error' | 'slow'
  delayMs: number
  /** Token counts it reports per answer (default: characters / 4). */
  usage?: { prompt_tokens: number; completion_tokens: number }
  close(): Promise<void>
}

const tokens = (s: string) => Math.ceil(s.length / 4)

/**
 * A local HTTP server speaking the protocol `@huggingface/inference`'s `InferenceClient` uses
 * with `endpointUrl`: OpenAI-style `POST …/v1/chat/completions` (JSON, or server-sent events with
 * `stream: true`), and feature extraction (`POST <endpoint>` with `{ inputs }`, answering one
 * vector per input). It can also be down (503), fail (500) or be slow.
 */
export async function startInferenceServer(): Promise<InferenceServer> {
  const state: Omit<InferenceServer, 'url' | 'close'> = {
    received: [],
    reply: () => 'Orders over 500 EUR need approval [1].',
    mode: 'ok',
    delayMs: 0,
  }
  const server = http.createServer((req, res) => {
    let raw = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => {
      raw += c
    })
    req.on('end', async () => {
      let body: any
      try {
        body = JSON.parse(raw || '{}')
      } catch {
        body = null
      }
      state.received.push({ path: req.url ?? '/', headers: req.headers, body, raw })
      if (state.mode === 'slow') await new Promise((r) => setTimeout(r, state.delayMs))
      if (res.destroyed) return
      if (state.mode === 'down') {
        res.writeHead(503, { 'content-type': 'application/json' })
        return res.end(JSON.stringify({ error: 'model is loading' }))
      }
      if (state.mode === 'error') {
        res.writeHead(500, { 'content-type': 'application/json' })
        return res.end(JSON.stringify({ error: 'internal failure' }))
      }
      if (body === null) {
        res.writeHead(400, { 'content-type': 'application/json' })
        return res.end(JSON.stringify({ error: 'bad json' }))
      }
      if ((req.url ?? '').endsWith('/chat/completions')) {
        const messages = (body.messages ?? []) as Array<{ role: string; content: string }>
        const text = state.reply(messages)
        const usage = state.usage ?? {
          prompt_tokens: tokens(messages.map((m) => m.content).join('\n')),
          completion_tokens: tokens(text),
        }
        if (body.stream) {
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
          const words = text.split(/(?<= )/)
          for (const [i, w] of words.entries()) {
            const chunk = {
              id: 'chatcmpl-test',
              object: 'chat.completion.chunk',
              created: 0,
              model: body.model,
              choices: [{ index: 0, delta: { role: 'assistant', content: w }, finish_reason: null }],
              ...(i === words.length - 1
                ? { usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } }
                : {}),
            }
            res.write(`data: ${JSON.stringify(chunk)}\n\n`)
          }
          res.write('data: [DONE]\n\n')
          return res.end()
        }
        res.writeHead(200, { 'content-type': 'application/json' })
        return res.end(
          JSON.stringify({
            id: 'chatcmpl-test',
            object: 'chat.completion',
            created: 0,
            model: body.model,
            choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
            usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
          }),
        )
      }
      const inputs: string[] = Array.isArray(body.inputs) ? body.inputs : [String(body.inputs ?? '')]
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(inputs.map((s) => [s.length, s.split(/\s+/).length, 1, 0])))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  const out = state as InferenceServer
  out.url = `http://127.0.0.1:${port}`
  out.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections()
      server.close(() => r())
    })
  return out
}
