// @ts-check
// The log lines of one invocation, taken from the text the isolate buffered and limited again
// here: the isolate limits them too, but its counters live where plugin code runs.
import { Buffer } from 'node:buffer'
import { parseUntrustedJson } from '../safe-json.mjs'

/** @typedef {import('../types.js').LogLine} LogLine */

const LEVELS = new Set(['debug', 'info', 'warn', 'error'])

export class LogCollector {
  /**
   * @param {string} invocationId
   * @param {{ maxLogLines: number, maxLogBytes: number }} limits
   */
  constructor(invocationId, limits) {
    this.invocationId = invocationId
    this.limits = limits
    /** @type {LogLine[]} */
    this.lines = []
    this.bytes = 0
    this.truncated = false
  }

  /**
   * Takes the log lines the isolate buffered: '[[[level, message, fieldsJson, time], ...], dropped]'.
   * @param {string} text
   */
  take(text) {
    // what an invocation that logged nothing leaves (the caller skips it too)
    if (text === '[[],0]') return
    /** @type {unknown} */
    let parsed
    try {
      parsed = JSON.parse(text)
    } catch {
      return
    }
    if (!Array.isArray(parsed) || !Array.isArray(parsed[0])) return
    if (parsed[1] !== 0) this.truncated = true
    for (const entry of parsed[0]) {
      if (!Array.isArray(entry)) continue
      const [level, message, fields, time] = entry
      if (typeof message !== 'string' || typeof fields !== 'string') continue
      const size = Buffer.byteLength(message) + fields.length
      if (this.lines.length >= this.limits.maxLogLines || this.bytes + size > this.limits.maxLogBytes) {
        this.truncated = true
        return
      }
      this.bytes += size
      const at = typeof time === 'number' && Number.isFinite(time) ? new Date(time) : new Date()
      /** @type {LogLine} */
      const line = {
        invocationId: this.invocationId,
        level: LEVELS.has(level) ? level : 'info',
        message,
        time: (Number.isNaN(at.getTime()) ? new Date() : at).toISOString(),
      }
      if (fields !== '') {
        try {
          const value = parseUntrustedJson(fields)
          line.fields =
            value !== null && typeof value === 'object' && !Array.isArray(value)
              ? /** @type {Record<string, unknown>} */ (value)
              : { value }
        } catch {
          // unparseable fields are dropped, the line is kept
        }
      }
      this.lines.push(line)
    }
  }

  /** The lines, with a warning at the end when some were dropped. */
  finish() {
    if (this.truncated) {
      this.lines.push({
        invocationId: this.invocationId,
        level: 'warn',
        message: 'log limit reached; later lines of this invocation were dropped',
        time: new Date().toISOString(),
      })
    }
    return this.lines
  }
}
