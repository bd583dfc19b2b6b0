/**
 * What `trellis start` shows in a terminal: log lines a person reads (time, level, message, the
 * request in brief) instead of JSON, the demo load's own requests kept out of them below
 * warnings, and one progress line that redraws in place under the log. Not in a terminal, the
 * kernel keeps writing JSON lines (createLogger's default).
 */

const LEVELS: Record<number, { name: string; colour: string }> = {
  10: { name: 'TRACE', colour: '90' },
  20: { name: 'DEBUG', colour: '36' },
  30: { name: 'INFO', colour: '32' },
  40: { name: 'WARN', colour: '33' },
  50: { name: 'ERROR', colour: '31' },
  60: { name: 'FATAL', colour: '35' },
}
const WARN = 40
/** Requests the kernel sends itself while loading the demo carry request ids with this prefix. */
export const DEMO_REQUEST_ID_PREFIX = 'demo-'
const SHOWN_ELSEWHERE = new Set([
  'level',
  'time',
  'msg',
  'pid',
  'hostname',
  'service',
  'req',
  'res',
  'responseTime',
  'err',
  'reqId',
])

export interface Terminal {
  /** A pino destination: formats each JSON line. */
  write(chunk: string): boolean
  /** A line of the start-up output (kept above the progress line). */
  line(text: string): void
  /** A progress bar for `label`: call with counts; it redraws at most every 100 ms, and at the end. */
  progress(label: string): (done: number, total: number) => void
  /** Ends the progress line, leaving the cursor on a fresh line. */
  done(): void
}

export function createTerminal(
  out: NodeJS.WriteStream,
  opts: { now?: () => number; colours?: boolean } = {},
): Terminal {
  const now = opts.now ?? Date.now
  const colours = opts.colours ?? out.hasColors?.() ?? false
  const paint = (code: string, s: string) => (colours ? `\x1b[${code}m${s}\x1b[0m` : s)
  let status = ''
  const print = (text: string) => {
    out.write(status ? `\r\x1b[K${text}\n${status}` : `${text}\n`)
  }
  return {
    write(chunk: string) {
      for (const raw of chunk.split('\n')) {
        if (!raw.trim()) continue
        let entry: Record<string, any>
        try {
          entry = JSON.parse(raw)
        } catch {
          print(raw)
          continue
        }
        if (
          (entry.level ?? 30) < WARN &&
          typeof entry.reqId === 'string' &&
          entry.reqId.startsWith(DEMO_REQUEST_ID_PREFIX)
        )
          continue
        print(formatEntry(entry, paint))
      }
      return true
    },
    line: print,
    progress(label: string) {
      const started = now()
      let drawn = 0
      return (done: number, total: number) => {
        const t = now()
        if (done < total && t - drawn < 100) return
        drawn = t
        const line = progressLine(label, done, total, t - started)
        // At the end the bar stays as a line of the output; meanwhile it redraws in place.
        status = done >= total ? '' : line
        out.write(`\r\x1b[K${line}${done >= total ? '\n' : ''}`)
      }
    },
    done() {
      if (status) out.write('\n')
      status = ''
    },
  }
}

/** `orders [██████░░░░░░░░] 412/830  50 %  about 1 min 20 s left` */
export function progressLine(label: string, done: number, total: number, elapsedMs: number, width = 24): string {
  const share = total > 0 ? Math.min(1, done / total) : 1
  const filled = Math.round(share * width)
  const left = done > 0 && done < total ? (elapsedMs / done) * (total - done) : undefined
  const estimate =
    done >= total
      ? `done in ${duration(elapsedMs)}`
      : left === undefined
        ? 'estimating…'
        : `about ${duration(left)} left`
  return `${label} [${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${done}/${total}  ${Math.floor(share * 100)} %  ${estimate}`
}

function duration(ms: number): string {
  const s = Math.max(1, Math.round(ms / 1000))
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`
}

/** `12:03:04 INFO  request completed  POST /v1/auth/login 200 12 ms  reqId=r-1 tenantId=…` */
export function formatEntry(
  entry: Record<string, any>,
  paint: (code: string, s: string) => string = (_c, s) => s,
): string {
  const level = LEVELS[entry.level as number] ?? { name: String(entry.level ?? ''), colour: '0' }
  const time =
    typeof entry.time === 'string'
      ? entry.time.slice(11, 19)
      : new Date(typeof entry.time === 'number' ? entry.time : Date.now()).toISOString().slice(11, 19)
  const parts = [paint('90', time), paint(level.colour, level.name.padEnd(5)), String(entry.msg ?? '')]
  const req = entry.req as { method?: string; url?: string } | undefined
  const request = [
    req?.method,
    req?.url,
    entry.res?.statusCode,
    typeof entry.responseTime === 'number' ? `${Math.round(entry.responseTime)} ms` : undefined,
  ].filter((x) => x !== undefined)
  if (request.length) parts.push(request.join(' '))
  const rest = Object.entries(entry)
    .filter(([k]) => !SHOWN_ELSEWHERE.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
  if (entry.reqId !== undefined) rest.unshift(`reqId=${entry.reqId}`)
  if (rest.length) parts.push(paint('90', rest.join(' ')))
  let line = parts.filter(Boolean).join('  ')
  if (entry.err)
    line += `\n${paint(level.colour, String(entry.err.stack ?? entry.err.message ?? JSON.stringify(entry.err)))}`
  return line
}
