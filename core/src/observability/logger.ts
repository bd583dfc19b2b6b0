import { pino, type Logger } from 'pino'
import type { KernelConfig } from '../config.js'

/** JSON logs; request logs carry the request id (reqId) and, once known, the tenant id. */
export function createLogger(level: KernelConfig['logLevel'], destination?: NodeJS.WritableStream): Logger {
  return pino({ level, base: { service: 'trellis' }, timestamp: pino.stdTimeFunctions.isoTime, redact: ['req.headers.authorization', '*.password', '*.refreshToken'] }, destination as never)
}
