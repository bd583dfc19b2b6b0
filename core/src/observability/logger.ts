import { pino, type Logger } from 'pino'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { KernelConfig } from '../config.js'
import { REDACT_PATHS, REDACTED, redactUrl } from './redact.js'

/**
 * JSON logs; request logs carry the request id (reqId) and, once known, the tenant id.
 * Credentials never reach a line: a token in the query string is replaced in the logged URL,
 * and credential headers and fields are replaced wherever they are logged (see redact.ts).
 */
export function createLogger(level: KernelConfig['logLevel'], destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'trellis' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      serializers: { req: serializeRequest, res: serializeReply, err: pino.stdSerializers.err },
    },
    destination as never,
  )
}

function serializeRequest(req: FastifyRequest) {
  return {
    method: req.method,
    url: typeof req.url === 'string' ? redactUrl(req.url) : req.url,
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket ? req.socket.remotePort : undefined,
  }
}

function serializeReply(reply: FastifyReply) {
  return { statusCode: reply.statusCode }
}
