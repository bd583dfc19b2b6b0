import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createTerminal, formatEntry, progressLine } from '../src/cli/terminal-log.js'
import { createLogger } from '../src/observability/logger.js'

/** A stand-in for process.stdout that keeps what was written. */
function screen() {
  let text = ''
  const out = { write: (s: string) => ((text += s), true), hasColors: () => false } as unknown as NodeJS.WriteStream
  return { out, text: () => text }
}

t.test('a log line reads as time, level, message and the request in brief', async (t) => {
  const line = formatEntry({
    level: 30,
    time: '2026-12-06T01:02:03.456Z',
    service: 'trellis',
    reqId: 'r-7',
    req: { method: 'POST', url: '/v1/auth/login' },
    res: { statusCode: 200 },
    responseTime: 12.4,
    msg: 'request completed',
    tenantId: 't-1',
  })
  t.equal(line, '01:02:03  INFO   request completed  POST /v1/auth/login 200 12 ms  reqId=r-7 tenantId=t-1')
  t.match(
    formatEntry({
      level: 50,
      time: '2026-12-06T01:02:03.456Z',
      msg: 'boom',
      err: { message: 'bad', stack: 'Error: bad\n    at x' },
    }),
    /^01:02:03 {2}ERROR {2}boom\nError: bad\n {4}at x$/,
  )
})

t.test(
  "the kernel logger writes readable lines to a terminal, without the demo load's own requests below warnings",
  async (t) => {
    const s = screen()
    const terminal = createTerminal(s.out)
    const logger = createLogger('info', terminal as unknown as NodeJS.WritableStream)
    logger.child({ reqId: 'demo-41' }).info({ req: { method: 'POST', url: '/v1/x/orders/orders' } }, 'incoming request')
    logger.child({ reqId: 'demo-42' }).warn('rate limited')
    logger.child({ reqId: 'r-1' }).info('incoming request')
    logger.info('Server listening at http://127.0.0.1:3000')
    const lines = s.text().trimEnd().split('\n')
    t.equal(lines.length, 3, s.text())
    t.match(lines[0], /WARN {2} rate limited {2}reqId=demo-42$/)
    t.match(lines[1], /INFO {3}incoming request {2}reqId=r-1$/)
    t.match(lines[2], /INFO {3}Server listening at http:\/\/127\.0\.0\.1:3000$/)
    t.notMatch(s.text(), /"level"/, 'no JSON')
  },
)

t.test('the progress line redraws in place with counts and an estimate, and log lines stay above it', async (t) => {
  t.equal(progressLine('orders', 0, 830, 0, 10), 'orders [░░░░░░░░░░] 0/830  0 %  estimating…')
  t.equal(progressLine('orders', 415, 830, 60_000, 10), 'orders [█████░░░░░] 415/830  50 %  about 1 min 0 s left')
  t.equal(progressLine('orders', 830, 830, 125_000, 10), 'orders [██████████] 830/830  100 %  done in 2 min 5 s')
  let clock = 0
  const s = screen()
  const terminal = createTerminal(s.out, { now: () => clock })
  const progress = terminal.progress('orders')
  clock = 1000
  progress(1, 4)
  clock = 1050
  progress(2, 4) // within 100 ms of the last drawing: not drawn
  terminal.line('a line meanwhile')
  clock = 3000
  progress(4, 4)
  terminal.line('after')
  terminal.done()
  t.equal(
    s.text(),
    '\r\x1b[Korders [██████░░░░░░░░░░░░░░░░░░] 1/4  25 %  about 3 s left' +
      '\r\x1b[Ka line meanwhile\norders [██████░░░░░░░░░░░░░░░░░░] 1/4  25 %  about 3 s left' +
      '\r\x1b[Korders [████████████████████████] 4/4  100 %  done in 3 s\n' +
      'after\n',
  )
})

t.test('trellis start --demo in a terminal: readable lines and a progress bar, no JSON request log', async (t) => {
  const cli = fileURLToPath(new URL('../../platform/bin/trellis.js', import.meta.url))
  // `script` gives the kernel a terminal as its standard output, as a person's shell does.
  const child = spawn('script', ['-qefc', `${process.execPath} ${cli} start --demo`, '/dev/null'], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TERM: 'dumb',
      PORT: '0',
      LOG_LEVEL: 'info',
      TRELLIS_DATA_DIR: mkdtempSync(join(tmpdir(), 'trellis-tty-')),
      TRELLIS_DEMO_ORDERS: '5',
    },
  })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  const exited = new Promise<void>((r) => child.on('exit', () => r()))
  t.teardown(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await exited
    }
  })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo did not start:\n${out}`)), 480_000)
    child.stdout.on('data', () => {
      if (out.includes('then send the accessToken')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.on('exit', () => reject(new Error(`exited:\n${out}`)))
  })
  t.match(out, /loading orders \[█+\] 5\/5 {2}100 % {2}done in \d+/, 'a progress bar with counts')
  t.match(out, /\d\d:\d\d:\d\d {2}INFO {3}Server listening at http/, 'readable log lines')
  t.notMatch(out, /\{"level"/, 'no JSON log lines')
  t.notMatch(out, /\/v1\/x\/orders\/orders/, "the load's own requests are not logged")
})
