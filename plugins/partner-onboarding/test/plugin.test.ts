// The plugin's routes and workflow steps in the SDK's in-memory host, with a small driver that
// follows the runtime's contract: a plain value goes to the next step in manifest order, a task
// hands a TaskResult to the step its outcome names, a wait hands a WaitResult to `next` or
// `onTimeout`.
import t from 'tap'
import { createTestHost } from '@trellis/plugin-sdk'
import { partnerOnboardingPlugin, onboardingIdOf, REVIEW_FORM, DEFAULT_TRAINING } from '../src/index.js'
import { drive, type Directive } from './drive.js'

const doc = (name: string, contentType: 'text/plain' | 'text/csv' | 'application/json', content: string) => ({
  name,
  contentType,
  content,
})
const AGREEMENT = doc(
  'agreement.txt',
  'text/plain',
  'Legal name: Northwind Traders GmbH\nTax ID: DE123456789\nRegion: EMEA\nTier: gold\nSignatory: Anna Schmidt\nStart date: 2027-03-01\n',
)
const REGISTRATION_BAD = doc('registration.csv', 'text/csv', 'Legal name,Tax ID\nNorthwind Traders GmbH,DE987654321\n')
const REGISTRATION_OK = doc(
  'registration.csv',
  'text/csv',
  'Legal name,Tax ID\nNorthwind Traders GmbH,DE 123 456 789\n',
)
const PROFILE = doc('profile.json', 'application/json', JSON.stringify({ partner: { tier: 'gold', region: 'EMEA' } }))

// The document agent is off here: these tests are about extraction and the reviews (document-agent.test.ts covers it).
const settings = { reviewSlaMs: 5000, setupSlaMs: 60_000, correctionTimeoutMs: 120_000, documentAgent: false }

t.test('a clean agreement goes from signature to an active partner', async (t) => {
  const host = createTestHost(partnerOnboardingPlugin, { settings })
  const res = await host.route('POST /agreements', {
    body: { partnerName: 'Northwind', reference: 'AG-1', documents: [AGREEMENT, REGISTRATION_OK, PROFILE] },
  })
  t.equal(res.status, 201)
  const body = res.body as any
  t.equal(body.onboarding.status, 'received')
  t.same(
    body.documents.map((d: any) => [d.name, d.round]),
    [
      ['agreement.txt', 1],
      ['registration.csv', 1],
      ['profile.json', 1],
    ],
  )
  t.same(
    host.emitted.map((e) => e.type),
    ['partner-onboarding.agreement.signed'],
  )
  const signed = host.emitted[0]!
  t.same(signed.data, {
    agreementId: body.agreement.id,
    onboardingId: body.onboarding.id,
    partnerName: 'Northwind',
    documents: 3,
  })

  // The runtime starts the workflow with the event (or its data); both carry the onboarding.
  t.equal(onboardingIdOf({ id: 'e1', type: signed.type, data: signed.data }), body.onboarding.id)
  let run = await drive(host, 'intake', { id: 'e1', type: signed.type, subject: body.onboarding.id, data: signed.data })
  t.same(run.trace, ['intake', 'extract', 'setupTenant'], 'no review when the documents are clean')
  t.equal(run.directive!.$workflow, 'task')
  const tenantTask = run.directive!.task
  t.equal(tenantTask.role, 'partner_ops')
  t.same(tenantTask.outcomes, ['done'])
  t.same(tenantTask.next, { done: 'setupPriceList' })
  t.equal(tenantTask.slaMs, 60_000)
  t.equal(tenantTask.escalateTo, 'partner_ops_lead')

  run = await drive(host, 'setupPriceList', {
    outcome: 'done',
    data: { tenantId: 'tn-42' },
    by: 'u-ops',
    input: tenantTask.input,
  })
  t.same(run.directive!.task.next, { done: 'setupUsers' })
  run = await drive(host, 'setupUsers', {
    outcome: 'done',
    data: { priceListId: 'pl-7' },
    by: 'u-ops',
    input: run.directive!.task.input,
  })
  t.same(run.directive!.task.next, { done: 'assignTraining' })
  run = await drive(host, 'assignTraining', {
    outcome: 'done',
    data: { users: 5, adminEmail: 'it@northwind.test' },
    by: 'u-ops',
    input: run.directive!.task.input,
  })
  t.same(run.trace, ['assignTraining', 'activate'])
  t.equal(run.directive!.$workflow, 'complete')
  t.equal(run.directive!.output.status, 'active')
  t.same(run.directive!.output.setup, {
    tenantId: 'tn-42',
    priceListId: 'pl-7',
    users: 5,
    adminEmail: 'it@northwind.test',
  })

  const training = [...host.collections.get('training')!.values()]
  t.same(
    training.map((x) => x.module),
    DEFAULT_TRAINING.filter((m) => !m.tiers || m.tiers.includes('gold')).map((m) => m.module),
    'gold partners get the gold modules',
  )
  t.same(
    host.emitted.map((e) => e.type),
    ['partner-onboarding.agreement.signed', 'partner-onboarding.partner.activated'],
  )

  const view = (await host.route('GET /onboardings')).body as any
  t.equal(view.items.length, 1)
  const o = view.items[0]
  t.equal(o.status, 'active')
  t.same(o.openRisks, [])
  t.equal(o.trainingAssigned, training.length)
  t.type(o.timeToActivationMs, 'number')
  t.equal(o.elapsedMs, null)
  t.same(view.summary, {
    total: 1,
    byStatus: { active: 1 },
    withOpenRisks: 0,
    activated: 1,
    medianTimeToActivationMs: o.timeToActivationMs,
  })

  // A second start for the same onboarding (an event delivered twice) ends without touching it.
  const again = await host.step<Directive>('onboarding.intake', { onboardingId: body.onboarding.id })
  t.same(again, {
    $workflow: 'complete',
    output: { onboardingId: body.onboarding.id, duplicate: true, status: 'active' },
  })
  const closed = await host.route('POST /agreements/:id/documents', {
    params: { id: body.agreement.id },
    body: { documents: [PROFILE] },
  })
  t.equal(closed.status, 409)
  t.equal((closed.body as any).code, 'ONB_ERR_ONBOARDING_CLOSED')
})

t.test('problems open a compliance review; a rejection waits for corrected documents and loops back', async (t) => {
  const host = createTestHost(partnerOnboardingPlugin, { settings })
  const res = (
    await host.route('POST /agreements', {
      body: {
        partnerName: 'Contoso',
        documents: [
          AGREEMENT,
          REGISTRATION_BAD,
          doc('profile.json', 'application/json', JSON.stringify({ tier: 'diamond' })),
        ],
      },
    })
  ).body as any
  const onboardingId = res.onboarding.id
  let run = await drive(host, 'intake', { onboardingId })
  t.same(run.trace, ['intake', 'extract'])
  const review = run.directive!.task
  t.equal(review.role, 'compliance_officer')
  t.equal(review.escalateTo, 'compliance_lead')
  t.equal(review.slaMs, 5000)
  t.same(review.outcomes, ['approve', 'reject'])
  t.same(review.next, { approve: 'setupTenant', reject: 'requestCorrections' })
  t.same(review.form, REVIEW_FORM)
  t.same(
    review.data.problems.map((p: any) => [p.code, p.field]),
    [
      ['inconsistent_field', 'taxId'],
      ['inconsistent_field', 'tier'],
      ['unknown_value', 'tier'],
    ],
  )
  t.equal(review.data.fields.taxId, 'DE123456789')

  let view = (await host.route('GET /onboardings/:id', { params: { id: onboardingId } })).body as any
  t.equal(view.status, 'in_review')
  t.same(
    view.openRisks.map((r: any) => r.field),
    ['taxId', 'tier', 'tier'],
  )
  t.type(view.elapsedMs, 'number')

  run = await drive(host, 'requestCorrections', {
    outcome: 'reject',
    data: { comment: 'Tax ids disagree; tier unknown' },
    by: 'u-lead',
    input: review.input,
  })
  const wait = run.directive!
  t.same(wait, {
    $workflow: 'wait',
    event: 'partner-onboarding.documents.corrected',
    match: { onboardingId },
    timeoutMs: 120_000,
    next: 'extract',
    onTimeout: 'expire',
    input: { onboardingId },
  })
  t.same(host.emitted.at(-1)!.type, 'partner-onboarding.corrections.requested')
  view = (await host.route('GET /onboardings/:id', { params: { id: onboardingId } })).body as any
  t.equal(view.status, 'awaiting_documents')
  t.same(
    view.decisions.map((d: any) => [d.outcome, d.by, d.comment]),
    [['reject', 'u-lead', 'Tax ids disagree; tier unknown']],
  )

  // Corrected documents: same names replace the old ones.
  const up = await host.route('POST /agreements/:id/documents', {
    params: { id: res.agreement.id },
    body: { documents: [REGISTRATION_OK, doc('profile.json', 'application/json', JSON.stringify({ tier: 'gold' }))] },
  })
  t.equal(up.status, 201)
  t.equal((up.body as any).round, 2)
  const corrected = host.emitted.at(-1)!
  t.equal(corrected.type, 'partner-onboarding.documents.corrected')
  t.same(corrected.data, {
    onboardingId,
    agreementId: res.agreement.id,
    round: 2,
    documents: ['registration.csv', 'profile.json'],
  })

  run = await drive(host, 'extract', {
    event: { id: 'e2', type: corrected.type, subject: onboardingId, data: corrected.data, time: '' },
    timedOut: false,
    input: wait.input,
  })
  t.same(run.trace, ['extract', 'setupTenant'], 'clean now: straight on to configuration')
  view = (await host.route('GET /onboardings/:id', { params: { id: onboardingId } })).body as any
  t.equal(view.round, 2)
  t.same(view.openRisks, [])
  t.equal(view.fields.tier, 'gold')
  t.same(
    view.documents.map((d: any) => [d.name, d.round]),
    [
      ['agreement.txt', 1],
      ['registration.csv', 1],
      ['profile.json', 1],
      ['registration.csv', 2],
      ['profile.json', 2],
    ],
  )
})

t.test(
  'approval with overrides accepts the risks; documents sent during a review are not lost; a timeout expires',
  async (t) => {
    const host = createTestHost(partnerOnboardingPlugin, { settings })
    const noSignatory = doc('agreement.txt', 'text/plain', AGREEMENT.content.replace(/Signatory:.*\n/, ''))
    const res = (await host.route('POST /agreements', { body: { partnerName: 'Fabrikam', documents: [noSignatory] } }))
      .body as any
    let run = await drive(host, 'intake', { onboardingId: res.onboarding.id })
    t.same(
      run.directive!.task.data.problems.map((p: any) => p.code),
      ['missing_field'],
    )
    run = await drive(host, 'setupTenant', {
      outcome: 'approve',
      data: { comment: 'Signatory confirmed by phone', overrides: { signatory: '  Jan  Jansen ' } },
      by: 'u-officer',
      input: run.directive!.task.input,
    })
    t.equal(run.directive!.task.role, 'partner_ops')
    const view = (await host.route('GET /onboardings/:id', { params: { id: res.onboarding.id } })).body as any
    t.equal(view.fields.signatory, 'Jan Jansen')
    t.same(view.openRisks, [])
    t.equal(view.acceptedRisks, 1)
    t.same(
      view.risks.map((r: any) => [r.status, r.acceptedBy]),
      [['accepted', 'u-officer']],
    )
    t.same(
      view.decisions.map((d: any) => [d.outcome, d.overrides]),
      [['approve', { signatory: 'Jan Jansen' }]],
    )

    // Rejected, but the partner already sent new documents while the review was open.
    const other = (
      await host.route('POST /agreements', { body: { partnerName: 'Tailspin', documents: [noSignatory] } })
    ).body as any
    run = await drive(host, 'intake', { onboardingId: other.onboarding.id })
    await host.route('POST /agreements/:id/documents', {
      params: { id: other.agreement.id },
      body: { documents: [AGREEMENT] },
    })
    run = await drive(host, 'requestCorrections', {
      outcome: 'reject',
      data: {},
      by: 'u-officer',
      input: run.directive!.task.input,
    })
    t.same(
      run.trace,
      ['requestCorrections', 'extract', 'setupTenant'],
      'no wait: the corrected documents are already there',
    )

    // Rejected and nothing arrives: the wait times out.
    const third = (
      await host.route('POST /agreements', { body: { partnerName: 'Woodgrove', documents: [noSignatory] } })
    ).body as any
    run = await drive(host, 'intake', { onboardingId: third.onboarding.id })
    run = await drive(host, 'requestCorrections', {
      outcome: 'reject',
      data: {},
      by: 'u-officer',
      input: run.directive!.task.input,
    })
    t.equal(run.directive!.$workflow, 'wait')
    run = await drive(host, 'expire', { event: null, timedOut: true, input: run.directive!.input })
    t.equal(run.directive!.$workflow, 'fail')
    t.equal(host.emitted.at(-1)!.type, 'partner-onboarding.onboarding.expired')
    const list = (await host.route('GET /onboardings', { query: { status: 'expired' } })).body as any
    t.same(
      list.items.map((o: any) => o.partnerName),
      ['Woodgrove'],
    )
    t.equal(list.items[0].elapsedMs, null)
    const all = (await host.route('GET /onboardings')).body as any
    t.same(all.summary.byStatus, { configuring: 2, expired: 1 })
    t.equal(all.summary.withOpenRisks, 1, 'the expired one still has its open risk')
  },
)

t.test('bad input is refused before anything is written', async (t) => {
  const host = createTestHost(partnerOnboardingPlugin, { settings })
  const bad = await host
    .route('POST /agreements', {
      body: {
        partnerName: 'X',
        documents: [{ name: 'a.pdf', contentType: 'application/pdf', content: '%PDF' }],
      } as any,
    })
    .catch((e) => e)
  t.equal(bad.code, 'KRN_ERR_VALIDATION_FAILED')
  const none = await host.route('POST /agreements', { body: { partnerName: 'X', documents: [] } }).catch((e) => e)
  t.equal(none.code, 'KRN_ERR_VALIDATION_FAILED')
  t.equal(host.collections.get('agreements')!.size, 0)
  const missing = await host.route('POST /agreements/:id/documents', {
    params: { id: 'nope' },
    body: { documents: [AGREEMENT] },
  })
  t.same([missing.status, (missing.body as any).code], [404, 'ONB_ERR_AGREEMENT_NOT_FOUND'])
  const noOnboarding = await host.route('GET /onboardings/:id', { params: { id: 'nope' } })
  t.same([noOnboarding.status, (noOnboarding.body as any).code], [404, 'ONB_ERR_ONBOARDING_NOT_FOUND'])
  const unknown = await host.step<any>('onboarding.intake', { onboardingId: 'nope' }).catch((e) => e)
  t.equal(unknown.code, 'ONB_ERR_ONBOARDING_NOT_FOUND')
  t.same(host.emitted, [])
})
