/**
 * The tenant user's copilot in Chromium, on a kernel with the ERP plugins and the copilot
 * installed through the marketplace and a knowledge base with one approved document: a user
 * holding only `copilot.ask` opens Copilot, asks a question the document answers and reads the
 * answer, the model that gave it and the passage it cites (document, section, text) in the
 * question's detail; then asks what the knowledge does not cover and reads "I don't know" with
 * the closest sources, the escalation it raised found through the API in the base's inbox.
 */
import t from 'tap'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { buildPlugin } from '@trellis/plugin-sdk'
import { createMarketplace } from '@trellis/marketplace'
import { consoleExtension } from '@trellis/platform'
import { DB_KINDS, addUser, createTenantWithAdmin, startTestKernel } from '../../core/test/helpers/test-kernel.js'
import { registerVersion } from '../../core/test/helpers/plugin-versions.js'
import { bundleOf, ERP_PLUGINS, PLUGINS_DIR } from '../../plugins/support/kernel.js'
import { consoleUser, openBrowser } from './browser.js'

const EXCEPTIONS = `# Order exceptions

## Credit hold exceptions

A credit hold exception is resolved by the credit controller, who approves the order once the customer has paid the open invoices or raises the customer's credit limit.

## Price approval exceptions

A price approval exception is resolved by the sales manager, who approves the discount or reprices the line.
`

async function copilotBundle() {
  const dir = join(PLUGINS_DIR, 'copilot')
  const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
  const built = await buildPlugin({ dir, write: false })
  return { manifest, code: built.code, sourceMap: built.sourceMap }
}

t.test('the tenant user asks the copilot and reads the answer with its cited passages, in Chromium', async (t) => {
  const k = await startTestKernel(t, DB_KINDS[0]!, {
    extensions: [createMarketplace(), consoleExtension()],
    plugins: { sandboxWorkers: 1 },
  })
  const address = await k.kernel.app.listen({ port: 0, host: '127.0.0.1' })
  const base = address.replace('[::1]', '127.0.0.1')

  // The copilot (and the ERP plugins it depends on), approved and installed for the tenant.
  const shop = await createTenantWithAdmin(k, 'northwind')
  const bundles = [...(await Promise.all(ERP_PLUGINS.map((id) => bundleOf(id)))), await copilotBundle()]
  for (const b of bundles) {
    await registerVersion(k, { manifest: b.manifest, code: b.code, sourceMap: b.sourceMap })
    const r = await k.req('POST', '/v1/installations', {
      token: shop.token,
      body: { plugin: b.manifest.name, version: b.manifest.version, capabilities: b.manifest.capabilities },
    })
    t.equal(r.status, 201, `${b.manifest.name} installed`)
  }
  const as = async (token: string, method: string, path: string, body?: unknown) => {
    const r = await k.req(method, path, { token, ...(body === undefined ? {} : { body }) })
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`)
    return r.body
  }
  // The knowledge the copilot answers from: one approved document in its default base.
  await as(shop.token, 'POST', '/v1/knowledge/bases', { slug: 'sales', name: 'Sales', supportRole: 'sales_lead' })
  const doc = await as(shop.token, 'POST', '/v1/knowledge/sales/documents', {
    title: 'Order exceptions',
    source: 'order-exceptions.md',
    format: 'markdown',
    content: EXCEPTIONS,
  })
  await as(shop.token, 'POST', `/v1/knowledge/sales/documents/${doc.id}/approve`)
  await as(shop.token, 'POST', '/v1/roles', { name: 'sales_rep', description: 'Sales', permissions: ['copilot.ask'] })
  await as(shop.token, 'POST', '/v1/roles', { name: 'viewer', description: 'Viewer', permissions: ['users.read'] })
  const rep = await addUser(k, shop.token, 'rep@northwind.test', 'sales_rep')
  const viewer = await addUser(k, shop.token, 'viewer@northwind.test', 'viewer')

  const page = await openBrowser(t)
  const { check, signIn, failing } = consoleUser(page, base)
  /** Asks through the page's create form; answers the question's detail dialog, opened from the list. */
  const ask = async (question: string) => {
    await page.getByRole('button', { name: 'Ask a question' }).click()
    const form = page.getByRole('dialog', { name: 'Ask a question' })
    await form.locator('#root_question').fill(question)
    await form.getByRole('button', { name: 'Ask a question' }).click()
    await page.getByRole('status').getByText('Done: Ask a question').waitFor()
    const row = page.getByRole('row').filter({ has: page.getByRole('cell', { name: question, exact: true }) })
    await row.getByRole('button', { name: /^Open / }).click()
    const detail = page.getByRole('dialog', { name: /^Copilot: / })
    await detail.getByRole('table', { name: /^Passages/ }).waitFor()
    return { row, detail, passages: detail.getByRole('table', { name: /^Passages/ }) }
  }
  const field = (detail: ReturnType<typeof page.getByRole>, label: string) =>
    detail
      .locator('dl.fields > div')
      .filter({ has: page.locator('dt').getByText(label, { exact: true }) })
      .locator('dd')

  await t.test('a question the approved document answers: the answer, its model and the cited passage', async (t) => {
    await signIn(rep.user.email, rep.password)
    await page.getByRole('link', { name: 'Copilot', exact: true }).click()
    await page.getByRole('heading', { name: 'Copilot' }).waitFor()
    const question = 'Who resolves a credit hold exception on an order?'
    const { row, detail, passages } = await ask(question)
    t.match(await row.innerText(), /true\s+general/, 'the list shows it answered')
    t.match(await field(detail, 'Answer').innerText(), /credit controller/)
    t.equal(await field(detail, 'Model').innerText(), 'local-extractive')
    t.equal(await field(detail, 'Answered').innerText(), 'true')
    t.equal(await field(detail, 'Escalation').innerText(), '', 'an answer escalates nothing')
    await passages.getByRole('cell', { name: 'Order exceptions', exact: true }).first().waitFor()
    const cited = await passages.innerText()
    t.match(cited, /credit controller, who approves the order/, 'the passage text is shown')
    t.match(cited, /Credit hold exceptions/, 'with its section')
    t.match(cited, /order-exceptions\.md/, 'and its source')
    t.notMatch(await detail.innerText(), /"documentId"|"chunkId"/, 'no raw JSON')
    await check('copilot')
    await page.keyboard.press('Escape')
  })

  await t.test(
    'a question the knowledge does not cover: "I don\'t know", the closest sources, an escalation',
    async (t) => {
      const question = 'What warranty do espresso machines carry abroad?'
      const { row, detail, passages } = await ask(question)
      t.match(await row.innerText(), /false\s+general/, 'the list shows it unanswered')
      t.match(await field(detail, 'Answer').innerText(), /^I don't know/)
      t.equal(await field(detail, 'Answered').innerText(), 'false')
      await passages.getByRole('cell', { name: 'Order exceptions', exact: true }).first().waitFor()
      t.match(await passages.innerText(), /resolved by the/, 'the closest sources, with their text')
      const escalationId = (await field(detail, 'Escalation').innerText()).trim()
      t.match(escalationId, /^[0-9a-f-]{36}$/, 'the escalation is named')
      await check('copilot escalated')
      await page.keyboard.press('Escape')

      const inbox = await as(shop.token, 'GET', '/v1/knowledge/escalations')
      const e = inbox.items.find((x: { id: string }) => x.id === escalationId)
      t.match(e, { question, role: 'sales_lead' }, "the escalation waits for the base's support role")
      const kept = await as(rep.token, 'GET', '/v1/x/copilot/questions')
      t.equal(kept.items.find((q: { question: string }) => q.question === question)?.escalationId, escalationId)
    },
  )

  await t.test('asking needs the copilot permission', async (t) => {
    const r = await k.req('POST', '/v1/x/copilot/ask', { token: viewer.token, body: { question: 'Who resolves it?' } })
    t.equal(r.status, 403)
    t.equal(r.body.code, 'AUTH_ERR_FORBIDDEN')
  })

  t.same(failing(), {}, 'axe: no serious or critical violation on any page')
})
