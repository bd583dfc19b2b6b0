// `npm run bench -- console`: navigation to the console's task inbox with 500 tasks, in
// Chromium, until the 500th task is rendered (the list is virtualised and fetched in pages of 200
// as it scrolls), against a baseline doing the same API work in the same browser without the
// console: trade the refresh cookie, read /v1/me, fetch the 500 tasks in pages of 200 and write
// them into the page as plain list items. Rounds alternate (console, baseline; baseline, console; …).
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Page } from 'playwright-core'
import { consoleExtension } from '@trellis/platform'
import { loadConfig } from '../core/src/config.js'
import { loadAverage, median } from './_harness.js'
import { benchKernel, benchTenant, installBuilt } from './servers/_tenant.js'

// The functions passed to page.evaluate run in the page; this file compiles without the DOM library.
declare const document: any

const TASKS = 500
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6)
const FLOWS = fileURLToPath(new URL('../core/test/fixtures/plugins/flows', import.meta.url))

async function consoleSide(page: Page, url: string): Promise<number> {
  const t0 = performance.now()
  await page.goto(`${url}/console/inbox`)
  const list = page.getByTestId('task-list')
  await list.getByRole('listitem').first().waitFor()
  // Scroll until the last task is rendered (pages load as the list nears its end).
  await page.waitForFunction(
    (n) => {
      const el = document.querySelector('[data-testid=task-list]')
      if (!el) return false
      el.scrollTop = el.scrollHeight
      return (
        document.querySelector('[data-testid=task-count]')?.textContent === `${n} tasks` &&
        el.scrollTop + el.clientHeight >= el.scrollHeight - 2
      )
    },
    TASKS,
    { polling: 16 },
  )
  return performance.now() - t0
}

async function baselineSide(page: Page, url: string): Promise<number> {
  const t0 = performance.now()
  await page.goto(`${url}/healthz`)
  const n = await page.evaluate(async () => {
    const csrf = /(?:^|; )trellis_csrf=([^;]+)/.exec(document.cookie)?.[1] ?? ''
    const r = await fetch('/v1/auth/refresh', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-trellis-session': 'cookie', 'x-trellis-csrf': csrf },
      body: '{}',
    })
    const { accessToken } = (await r.json()) as { accessToken: string }
    const auth = { authorization: `Bearer ${accessToken}` }
    await (await fetch('/v1/me', { headers: auth })).json()
    const ul = document.createElement('ul')
    document.body.replaceChildren(ul)
    let cursor: string | null = null
    let count = 0
    do {
      const page = (await (
        await fetch(`/v1/tasks?limit=200${cursor ? `&cursor=${cursor}` : ''}`, { headers: auth })
      ).json()) as { items: Array<{ title: string; dueAt: string | null }>; nextCursor: string | null }
      for (const task of page.items) {
        const li = document.createElement('li')
        li.textContent = `${task.title} ${task.dueAt ?? ''}`
        ul.append(li)
      }
      count += page.items.length
      cursor = page.nextCursor
    } while (cursor)
    return count
  })
  if (n !== TASKS) throw new Error(`baseline saw ${n} tasks`)
  return performance.now() - t0
}

export async function run(): Promise<void> {
  const kernel = await benchKernel({
    config: loadConfig({ TRELLIS_SECRET_KEY: randomBytes(32).toString('hex'), PORT: '0', LOG_LEVEL: 'silent' }),
    embeddedDir: 'memory://',
    extensions: [consoleExtension()],
  })
  const userDataDir = mkdtempSync(join(tmpdir(), 'trellis-bench-console-'))
  try {
    const { url, token, call } = await benchTenant(kernel)
    await installBuilt(kernel, FLOWS, call, token)
    await call('POST', '/v1/roles', { name: 'pricing_manager', permissions: ['users.read'] }, token)
    const invited = await call(
      'POST',
      '/v1/invitations',
      { email: 'pricing@bench.test', role: 'pricing_manager' },
      token,
    )
    await call('POST', '/v1/invitations/accept', {
      token: invited.acceptToken,
      name: 'Pricing',
      password: 'pricing-password',
    })
    const started = await call(
      'POST',
      '/v1/workflows/instances',
      { plugin: '@acme/flows', workflow: 'order', input: { orderId: 'O-1', discount: 0.3, slaMs: 3_600_000 } },
      token,
    )
    const owner = <T>(sql: string, params: unknown[] = []) =>
      kernel.ctx.db.asOwner((tx) => tx.sql<T>(sql, params)) as Promise<T[]>
    let first: { id: string } | undefined
    for (let i = 0; i < 400 && !first; i++) {
      ;[first] = await owner<{ id: string }>('select id from workflow_tasks where instance_id = ?', [started.id])
      if (!first) await new Promise((r) => setTimeout(r, 50))
    }
    if (!first) throw new Error('the workflow made no task')
    await owner(
      `insert into workflow_tasks (id, tenant_id, instance_id, step_seq, plugin, workflow, title, role, outcomes, next, form, data, sla_ms, due_at)
       select gen_random_uuid(), tenant_id, instance_id, step_seq, plugin, workflow, title || ' #' || g, role, outcomes, next, form, data, sla_ms, due_at
       from workflow_tasks, generate_series(2, ${TASKS}) g where id = ?`,
      [first.id],
    )
    const browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: process.env.TRELLIS_CHROMIUM ?? '/usr/bin/chromium',
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-gpu',
      ],
    })
    try {
      const page = browser.pages()[0] ?? (await browser.newPage())
      await page.goto(`${url}/console/`)
      await page.getByLabel('Email').fill('pricing@bench.test')
      await page.getByLabel('Password').fill('pricing-password')
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.getByRole('heading', { name: 'Task inbox' }).waitFor()
      // Warm-up (the browser's cache holds the hashed assets after the first load, as it would for a user).
      await consoleSide(page, url)
      await baselineSide(page, url)
      const times = { console: [] as number[], baseline: [] as number[] }
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? (['console', 'baseline'] as const) : (['baseline', 'console'] as const)
        for (const side of order)
          times[side].push(side === 'console' ? await consoleSide(page, url) : await baselineSide(page, url))
      }
      const c = median(times.console)
      const b = median(times.baseline)
      console.log(`navigation → inbox with ${TASKS} tasks rendered (median of ${ROUNDS} alternating rounds):`)
      console.log(`  console   ${c.toFixed(0)} ms  (${times.console.map((x) => x.toFixed(0)).join(', ')})`)
      console.log(`  baseline  ${b.toFixed(0)} ms  (${times.baseline.map((x) => x.toFixed(0)).join(', ')})`)
      console.log(`  ratio     ${(c / b).toFixed(2)}× the baseline; target ≤ 1000 ms: ${c <= 1000 ? 'met' : 'MISSED'}`)
      console.log(`  load average ${loadAverage()}`)
      if (c > 1000) process.exitCode = 1
    } finally {
      await browser.close()
    }
  } finally {
    await kernel.close()
    rmSync(userDataDir, { recursive: true, force: true })
  }
}
