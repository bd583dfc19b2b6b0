import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { Deadlines } from './deadlines.mjs'

// The invocations' deadlines on one timer (a parent's hang deadlines, a worker's wall deadlines),
// on a clock the tests move themselves.
function fakeClock() {
  let time = 0
  let armed: { fire: () => void; at: number } | undefined
  return {
    clock: {
      now: () => time,
      set: (fire: () => void, ms: number) => {
        armed = { fire, at: time + ms }
        return { ref: () => undefined, unref: () => undefined }
      },
      clear: () => {
        armed = undefined
      },
    },
    /** Moves the time on by `ms`, firing the timer whenever it comes due on the way. */
    advance(ms: number) {
      const end = time + ms
      while (armed && armed.at <= end) {
        const due = armed
        armed = undefined
        time = due.at
        due.fire()
      }
      time = end
    },
    armed: () => armed !== undefined,
  }
}

t.test('each deadline expires once its time has passed, and a cancelled one never does', async (t) => {
  const c = fakeClock()
  const deadlines = new Deadlines(c.clock)
  const fired: string[] = []
  deadlines.add(60, () => fired.push('late'))
  const gone = deadlines.add(20, () => fired.push('cancelled'))
  // added after a later one, due before it: the timer is re-armed for it
  deadlines.add(10, () => fired.push('early'))
  deadlines.cancel(gone)
  c.advance(9)
  t.same(fired, [], 'nothing is due before the earliest deadline')
  c.advance(26)
  t.same(fired, ['early'], 'the earliest has expired, the cancelled one has not')
  c.advance(25)
  t.same(fired, ['early', 'late'])
  t.equal(deadlines.pending.size, 0)
  t.notOk(c.armed(), 'no timer is left armed')
})

t.test('cleared deadlines never expire', async (t) => {
  const c = fakeClock()
  const deadlines = new Deadlines(c.clock)
  let fired = false
  deadlines.add(5, () => {
    fired = true
  })
  t.ok(c.armed())
  deadlines.clear()
  t.notOk(c.armed(), 'the timer is stopped')
  c.advance(25)
  t.equal(fired, false)
  t.equal(deadlines.pending.size, 0)
})

t.test('the timer keeps a process alive only while a deadline is pending', async (t) => {
  const module = fileURLToPath(new URL('./deadlines.mjs', import.meta.url))
  const run = (script: string) => {
    const t0 = performance.now()
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    })
    return { ms: performance.now() - t0, out: child.stdout.trim(), status: child.status }
  }
  const imp = `import { Deadlines } from ${JSON.stringify(module)}; const d = new Deadlines();`
  const done = run(
    `${imp} const a = d.add(10_000, () => {}); d.cancel(a); const b = d.add(15_000, () => {}); d.cancel(b)`,
  )
  t.equal(done.status, 0)
  t.ok(done.ms < 5000, `a process with only cancelled deadlines exits at once (${done.ms.toFixed(0)} ms)`)
  const waits = run(`${imp} d.add(300, () => console.log('expired'))`)
  t.equal(waits.out, 'expired', 'a process with a pending deadline lives until it expires')
})
