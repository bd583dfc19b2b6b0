import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { Deadlines } from './deadlines.mjs'

// The invocations' deadlines on one timer (a parent's hang deadlines, a worker's wall deadlines).
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('each deadline expires once its time has passed, and a cancelled one never does', async (t) => {
  const deadlines = new Deadlines()
  const fired: string[] = []
  deadlines.add(60, () => fired.push('late'))
  const gone = deadlines.add(20, () => fired.push('cancelled'))
  // added after a later one, due before it: the timer is re-armed for it
  deadlines.add(10, () => fired.push('early'))
  deadlines.cancel(gone)
  await sleep(35)
  t.same(fired, ['early'], 'the earliest has expired, the cancelled one has not')
  await sleep(60)
  t.same(fired, ['early', 'late'])
  t.equal(deadlines.pending.size, 0)
})

t.test('cleared deadlines never expire', async (t) => {
  const deadlines = new Deadlines()
  let fired = false
  deadlines.add(5, () => {
    fired = true
  })
  deadlines.clear()
  await sleep(25)
  t.equal(fired, false)
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
