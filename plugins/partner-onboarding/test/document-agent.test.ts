// The document agent in the SDK's in-memory host: each submitted document classified (agreement,
// tax certificate, bank letter, insurance, other) with its key fields and a confidence; the sure
// ones stand, a person confirms or corrects the rest. Accuracy is measured on a labelled set of
// documents with the embedded default's models: the kernel's own lexical embedder, and a chat
// model that never answers in a schema (the extractive one), so the nearest labelled examples
// propose. The figures are in docs/ai-agents.md.
import t from 'tap'
import { createTestHost, TrellisError, type TestHost } from '@trellis/plugin-sdk'
import { embedLexical } from '../../../core/src/ai/local/lexical-embedder.js'
import { NO_ANSWER_TEXT } from '../../../core/src/ai/local/extractive-answerer.js'
import { kindByRules, partnerOnboardingPlugin, type DocumentKind } from '../src/index.js'
import { drive, type Directive } from './drive.js'
import { LABELLED_DOCUMENTS, type LabelledDocument } from './fixtures/labelled-documents.js'

const settings = { reviewSlaMs: 5000, setupSlaMs: 60_000, correctionTimeoutMs: 120_000 }
const REVIEWER = 'u-reviewer'

/** The embedded default: an extractive chat model (its answer is never JSON) and lexical embeddings. */
const embeddedHost = () =>
  createTestHost(partnerOnboardingPlugin, { settings, ai: () => NO_ANSWER_TEXT, embed: (texts) => embedLexical(texts) })

interface Outcome {
  doc: LabelledDocument
  /** What the agent proposed (the task's prefilled proposal when a person was asked). */
  proposed: DocumentKind
  confidence: number
  byAgent: boolean
  task: Directive['task'] | null
}

/**
 * Signs an agreement with `docs` and runs the workflow until extraction; a person asked about a
 * document answers with `decide` (default: accepts a right proposal, corrects a wrong one to the label).
 */
async function onboard(
  host: TestHost,
  docs: LabelledDocument[],
  decide?: (task: Directive['task'], doc: LabelledDocument) => { outcome: string; data: unknown },
) {
  const res = await host.route('POST /agreements', {
    body: {
      partnerName: 'Labelled set',
      documents: docs.map(({ name, contentType, content }) => ({ name, contentType, content })),
    },
  })
  if (res.status !== 201) throw new Error(`POST /agreements: ${res.status} ${JSON.stringify(res.body)}`)
  const onboardingId = (res.body as any).onboarding.id as string
  const tasks = new Map<string, Directive['task']>()
  let run = await drive(host, 'intake', { onboardingId })
  while (run.at === 'classify') {
    const task = run.directive!.task
    const doc = docs.find((d) => d.name === task.input.input.name)!
    tasks.set(doc.name, task)
    const right = task.data.proposal?.kind === doc.kind
    const answer =
      decide?.(task, doc) ??
      (right ? { outcome: 'accept', data: {} } : { outcome: 'override', data: { proposal: { kind: doc.kind } } })
    run = await drive(host, 'classifyDecided', { ...answer, by: REVIEWER, input: task.input })
  }
  const view = (await host.route('GET /onboardings/:id', { params: { id: onboardingId } })).body as any
  const outcomes: Outcome[] = docs.map((doc) => {
    const c = view.documents.find((d: any) => d.name === doc.name).classification
    const task = tasks.get(doc.name) ?? null
    return {
      doc,
      proposed: task ? task.data.proposal.kind : c?.kind,
      confidence: task ? task.data.confidence : c?.confidence,
      byAgent: c?.decidedBy === 'agent',
      task,
    }
  })
  return { onboardingId, run, view, outcomes }
}

t.test('accuracy on the labelled set with the embedded default', async (t) => {
  t.ok(LABELLED_DOCUMENTS.length >= 30, `${LABELLED_DOCUMENTS.length} labelled documents`)
  const host = embeddedHost()
  const outcomes: Outcome[] = []
  const views: any[] = []
  // An agreement carries at most 20 documents.
  for (let i = 0; i < LABELLED_DOCUMENTS.length; i += 16) {
    const r = await onboard(host, LABELLED_DOCUMENTS.slice(i, i + 16))
    t.ok(r.run.trace.includes('extract'), 'every document decided, the workflow goes on to extraction')
    outcomes.push(...r.outcomes)
    views.push(r.view)
  }
  const n = outcomes.length
  const right = outcomes.filter((o) => o.proposed === o.doc.kind).length
  const auto = outcomes.filter((o) => o.byAgent)
  const autoRight = auto.filter((o) => o.proposed === o.doc.kind).length
  const rulesRight = LABELLED_DOCUMENTS.filter((d) => kindByRules(d).kind === d.kind).length
  const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)} %`
  t.comment(`agent (nearest labelled examples, lexical embeddings): ${right}/${n} right = ${pct(right, n)}`)
  t.comment(`decided without a person: ${auto.length}/${n} = ${pct(auto.length, n)}, of them right: ${autoRight}`)
  t.comment(`rules alone (name and heading keywords): ${rulesRight}/${n} = ${pct(rulesRight, n)}`)
  for (const o of outcomes.filter((x) => x.proposed !== x.doc.kind))
    t.comment(`wrong: ${o.doc.name} is ${o.doc.kind}, proposed ${o.proposed} at ${o.confidence.toFixed(2)}`)

  // What the design achieves here (29 of 31); the rules alone reach 26 and fail this floor.
  t.ok(right / n >= 0.9, `accuracy ${pct(right, n)} ≥ 90 %`)
  t.ok(rulesRight < right, 'the agent beats the rules it falls back to')
  // The property that lets documents pass without a person: every one that did is right.
  t.equal(autoRight, auto.length, 'every proposal that stood without a person is right')
  t.ok(auto.length / n >= 0.6, 'most documents need no person')
  t.ok(
    views.every((v) =>
      v.documents.every((d: any) => d.classification.kind === LABELLED_DOCUMENTS.find((l) => l.name === d.name)!.kind),
    ),
    'after the reviews every document carries its right kind',
  )

  const of = (name: string) => outcomes.find((o) => o.doc.name === name)!
  const bank = of('bank-confirmation.txt')
  t.same([bank.proposed, bank.byAgent, bank.task], ['bank_letter', true, null], 'a bank letter stands on its own')
  const agreement = views[0].documents.find((d: any) => d.name === 'partner-agreement-signed.txt').classification
  t.match(agreement, {
    kind: 'agreement',
    decidedBy: 'agent',
    overridden: false,
    referral: null,
    model: 'test-embedding',
    recordId: String,
  })
  t.same(agreement.fields.taxId, { value: 'DE123456789', confidence: 0.9 }, 'key fields with their confidence')
  t.same(agreement.fields.tier, { value: 'gold', confidence: 0.9 })
  t.same(agreement.fields.startDate, { value: '2027-03-01', confidence: 0.9 })
  t.match(agreement.reasons[0], /nearest to the agreement examples/)

  // A commercial register extract looks official; the agent is unsure and a person corrects it.
  const register = of('handelsregisterauszug.txt')
  t.equal(register.byAgent, false)
  t.equal(register.proposed, 'tax_certificate', 'the unsure proposal is prefilled on the task')
  t.ok(register.confidence < 0.5)
  t.equal(register.task!.role, 'compliance_officer', 'the compliance role confirms documents by default')
  t.equal(register.task!.data.referral, 'below-threshold')
  t.same(register.task!.outcomes, ['accept', 'override'])
  const registerView = views
    .flatMap((v) => v.documents)
    .find((d: any) => d.name === 'handelsregisterauszug.txt').classification
  t.match(registerView, { kind: 'other', decidedBy: REVIEWER, overridden: true, referral: 'below-threshold' })
  const prices = of('price-list-2027.csv')
  t.same([prices.byAgent, prices.proposed === 'other'], [false, false], 'a price list near nothing goes to a person')
})

t.test(
  'a chat model that answers in the schema proposes kind and fields; the rules fill what it left out',
  async (t) => {
    const asked: string[] = []
    const host = createTestHost(partnerOnboardingPlugin, {
      settings,
      ai: (req) => {
        asked.push(req.messages.map((m) => m.content).join('\n'))
        return JSON.stringify({
          proposal: { kind: 'insurance', fields: { legalName: { value: 'Contoso Supplies Inc.', confidence: 0.95 } } },
          confidence: 0.93,
          reasons: ['a certificate of liability insurance naming the insured'],
        })
      },
      embed: () => {
        throw new Error('the embedding model is not asked when the chat model answered')
      },
    })
    const doc = LABELLED_DOCUMENTS.find((d) => d.name === 'certificate-of-insurance.txt')!
    const { outcomes, view } = await onboard(host, [doc])
    t.same([outcomes[0]!.byAgent, outcomes[0]!.proposed], [true, 'insurance'])
    const c = view.documents[0].classification
    t.match(c, { model: 'test-model', confidence: 0.93, decidedBy: 'agent', recordId: String })
    t.same(c.fields.legalName, { value: 'Contoso Supplies Inc.', confidence: 0.95 })
    t.same(c.fields.taxId, { value: null, confidence: 0 }, 'a field the model left out is what the rules found')
    t.match(asked[0], /Document "certificate-of-insurance.txt" \(text\/plain\):\ncertificate of insurance/)
    t.match(asked[0], /Policy number: GL-2027-0045567/, 'the model sees the document’s opening')
  },
)

t.test('with AI off the rules propose and a person always decides; an override reaches extraction', async (t) => {
  const off = () => {
    throw new TrellisError('AI_ERR_DISABLED', 403, 'AI is disabled', 'AI is turned off for this tenant')
  }
  const host = createTestHost(partnerOnboardingPlugin, { settings, ai: off, embed: off })
  const agreement = {
    kind: 'agreement' as const,
    name: 'partner-agreement.txt',
    contentType: 'text/plain' as const,
    content:
      'PARTNER AGREEMENT\nLegal name: Northwind Traders GmbH\nTax ID: DE123456789\nRegion: EMEA\nTier: diamond\nSignatory: Anna Schmidt\nStart date: 2027-03-01\n',
  }
  const { outcomes, run, view } = await onboard(host, [agreement], (task) => ({
    outcome: 'override',
    data: {
      proposal: { kind: 'agreement', fields: { ...task.data.proposal.fields, tier: { value: 'gold', confidence: 1 } } },
    },
  }))
  const task = outcomes[0]!.task!
  t.match(task.data, { model: 'rules', referral: 'AI_ERR_DISABLED', confidence: 0.5 })
  t.equal(task.data.proposal.kind, 'agreement', 'the rules read the heading')
  t.same(task.data.proposal.fields.tier, { value: 'diamond', confidence: 0.4 }, 'an unknown tier is unsure')
  t.match(view.documents[0].classification, { kind: 'agreement', decidedBy: REVIEWER, overridden: true })
  // The corrected tier is what extraction checks: the documents are clean, on to configuration.
  t.same(run.trace.slice(-2), ['extract', 'setupTenant'])
  const onboarding = (await host.route('GET /onboardings/:id', { params: { id: view.id } })).body as any
  t.equal(onboarding.fields.tier, 'gold')
  t.same(onboarding.openRisks, [])
})

t.test('the document agent off: extraction as before, no document is classified', async (t) => {
  const host = createTestHost(partnerOnboardingPlugin, {
    settings: { ...settings, documentAgent: false },
    ai: () => {
      throw new Error('no model is asked')
    },
  })
  const doc = LABELLED_DOCUMENTS.find((d) => d.name === 'partner-agreement-signed.txt')!
  const { run, view } = await onboard(host, [doc])
  t.same(run.trace, ['intake', 'extract', 'setupTenant'])
  t.equal(view.documents[0].classification, null)
})

t.test('the installation’s threshold and review role apply', async (t) => {
  const host = createTestHost(partnerOnboardingPlugin, {
    settings: { ...settings, documentThreshold: 0.95, documentReviewRole: 'document_clerk' },
    ai: () => NO_ANSWER_TEXT,
    embed: (texts) => embedLexical(texts),
  })
  const doc = LABELLED_DOCUMENTS.find((d) => d.name === 'bank-confirmation.txt')!
  const { outcomes } = await onboard(host, [doc])
  t.equal(outcomes[0]!.byAgent, false, 'a sure bank letter is still below 0.95')
  t.equal(outcomes[0]!.task!.role, 'document_clerk')
  t.equal(outcomes[0]!.task!.data.referral, 'below-threshold')
})
