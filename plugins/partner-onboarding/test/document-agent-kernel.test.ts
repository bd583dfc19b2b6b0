// The document agent on the real kernel, on both databases, with the embedded default's models:
// the extractive chat model cannot answer in the agent's schema (its attempt is on record), the
// lexical embedder finds the nearest labelled examples, a sure document stands with the embedding
// call's record, an unsure one is a task for the review role with the proposal prefilled, and the
// person's correction is what the onboarding keeps.
import t from 'tap'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { buildPlugin } from '@trellis/plugin-sdk'
import { DB_KINDS } from '../../../core/test/helpers/test-kernel.js'
import { PLUGINS_DIR, startErpKernel } from '../../support/kernel.js'
import { asToken, eventually, person } from '../../support/people.js'
import { LABELLED_DOCUMENTS } from './fixtures/labelled-documents.js'

const dir = join(PLUGINS_DIR, 'partner-onboarding')
const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
const built = await buildPlugin({ dir, write: false })
const onboardingPlugin = { manifest, code: built.code, sourceMap: built.sourceMap }
const X = '/v1/x/partner-onboarding'

const pick = (...names: string[]) =>
  names.map((n) => {
    const { name, contentType, content } = LABELLED_DOCUMENTS.find((d) => d.name === n)!
    return { name, contentType, content }
  })

for (const kind of DB_KINDS)
  t.test(`the document agent on ${kind}`, async (t) => {
    const dev = await startErpKernel([], {}, kind)
    t.teardown(() => dev.close())
    await dev.install(onboardingPlugin, { settings: { documentReviewRole: 'document_clerk' } })
    const admin = asToken(dev)
    const clerk = await person(dev, 'document_clerk', ['partner-onboarding.read'])

    const signed = await admin('POST', `${X}/agreements`, {
      partnerName: 'Northwind Traders',
      documents: pick('partner-agreement-signed.txt', 'bank-confirmation.txt', 'handelsregisterauszug.txt'),
    })
    t.equal(signed.status, 201, JSON.stringify(signed.body))
    const onboardingId = signed.body.onboarding.id

    const task = await eventually(
      async () =>
        (await clerk('GET', '/v1/tasks')).body.items?.find(
          (x: { data?: { agent?: string } }) => x.data?.agent === 'onboarding-document-classifier',
        ),
      'the task for the unsure document',
    )
    t.equal(task.role, 'document_clerk')
    t.equal(task.title, 'Confirm what "handelsregisterauszug.txt" is')
    t.match(task.data, {
      proposal: { kind: 'tax_certificate' },
      model: 'local-lexical',
      referral: 'below-threshold',
      decidedBy: 'agent',
      recordId: String,
    })
    t.ok(task.data.confidence < 0.5, 'below the default threshold')

    // The two sure documents were decided before the agent reached this one.
    const before = (await admin('GET', `${X}/onboardings/${onboardingId}`)).body
    const byName = (view: any, name: string) => view.documents.find((d: any) => d.name === name).classification
    const agreement = byName(before, 'partner-agreement-signed.txt')
    t.match(agreement, { kind: 'agreement', decidedBy: 'agent', model: 'local-lexical', referral: null })
    t.same(agreement.fields.taxId, { value: 'DE123456789', confidence: 0.9 })
    t.match(byName(before, 'bank-confirmation.txt'), { kind: 'bank_letter', decidedBy: 'agent' })
    t.equal(byName(before, 'handelsregisterauszug.txt'), null, 'not decided while the person has not')
    t.equal(before.status, 'extracting')

    // The embedding call behind a decision is on record; so is the chat model's refused attempt.
    const record = await admin('GET', `/v1/ai/records/${agreement.recordId}`)
    t.equal(record.status, 200, JSON.stringify(record.body))
    t.match(record.body, { model: 'local-lexical', outcome: 'ok', plugin: '@trellis/partner-onboarding' })
    const records = (await admin('GET', '/v1/ai/records?limit=50')).body.items
    t.ok(
      records.some(
        (r: { plugin: string; errorCode: string | null }) =>
          r.plugin === '@trellis/partner-onboarding' && r.errorCode === 'AI_ERR_SCHEMA_MISMATCH',
      ),
      "the extractive model's attempt at the schema is on record",
    )

    // Only the review role decides; the person's correction is what the onboarding keeps.
    const notTheirs = await admin('POST', `/v1/tasks/${task.id}/complete`, {
      outcome: 'override',
      data: { proposal: { kind: 'insurance' } },
    })
    t.equal(notTheirs.body.code, 'WFL_ERR_NOT_YOUR_TASK')
    const badKind = await clerk('POST', `/v1/tasks/${task.id}/complete`, {
      outcome: 'override',
      data: { proposal: { kind: 'passport' } },
    })
    t.equal(badKind.status, 400, 'a kind outside the list is refused')
    const done = await clerk('POST', `/v1/tasks/${task.id}/complete`, {
      outcome: 'override',
      data: { proposal: { kind: 'other' } },
    })
    t.equal(done.status, 200, JSON.stringify(done.body))

    // Every document decided: extraction runs and the compliance review lists each document's kind.
    const after = await eventually(async () => {
      const v = (await admin('GET', `${X}/onboardings/${onboardingId}`)).body
      return v.status !== 'extracting' && v
    }, 'extraction after the documents are decided')
    t.match(byName(after, 'handelsregisterauszug.txt'), {
      kind: 'other',
      overridden: true,
      referral: 'below-threshold',
      model: 'local-lexical',
    })
    t.not(byName(after, 'handelsregisterauszug.txt').decidedBy, 'agent', 'the person who corrected it')
    t.equal(after.fields.taxId, 'DE123456789')
  })
