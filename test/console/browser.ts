/**
 * The browser the console's tests drive: Debian's Chromium through playwright-core (headless, no
 * sandbox, no background networking), one persistent profile per test file, axe-core run in the
 * page, and signing in and out the way a person does.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Page } from 'playwright-core'

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')

/** Runs axe-core in the page; answers the serious and critical violations. */
export async function axe(page: Page): Promise<string[]> {
  await page.addScriptTag({ content: AXE }).catch(async () => {
    // The console's CSP refuses inline scripts: axe goes in through the DevTools protocol instead.
    await page.evaluate(AXE)
  })
  const result = (await page.evaluate('axe.run(document, { resultTypes: ["violations"] })')) as {
    violations: Array<{ id: string; impact: string; nodes: unknown[] }>
  }
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}, ${v.nodes.length} nodes)`)
}

type Teardown = { teardown(fn: () => unknown): void }

/** One page in a fresh Chromium profile, closed (and the profile removed) when the test ends. */
export async function openBrowser(t: Teardown): Promise<Page> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'trellis-console-'))
  t.teardown(() => rmSync(userDataDir, { recursive: true, force: true }))
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
  t.teardown(() => browser.close())
  const page = browser.pages()[0] ?? (await browser.newPage())
  await page.setViewportSize({ width: 1200, height: 760 })
  page.setDefaultTimeout(30_000)
  return page
}

/**
 * Signing in and out at `base`, and `check(name)`: axe on the page as it is, its serious or
 * critical violations kept by page name (and, with TRELLIS_CONSOLE_SCREENSHOTS=docs/console, a
 * screenshot for the README refreshed from the run).
 */
export function consoleUser(page: Page, base: string) {
  const violations: Record<string, string[]> = {}
  const shots = process.env.TRELLIS_CONSOLE_SCREENSHOTS
  return {
    violations,
    async check(name: string) {
      violations[name] = await axe(page)
      if (shots) await page.screenshot({ path: join(shots, `${name.replace(/ /g, '-')}.png`) })
    },
    async signIn(email: string, password: string) {
      await page.goto(`${base}/console/`)
      await page.getByLabel('Email').fill(email)
      await page.getByLabel('Password').fill(password)
      await page.getByRole('button', { name: 'Sign in', exact: true }).click()
      await page.getByRole('button', { name: 'Sign out' }).waitFor()
    },
    async signOut() {
      await page.getByRole('button', { name: 'Sign out' }).click()
      await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor()
    },
    /** The pages with a serious or critical violation (an empty object when none has). */
    failing() {
      return Object.fromEntries(Object.entries(violations).filter(([, v]) => v.length))
    },
  }
}
