// Acceptance (issue 7): a full partner onboarding through the public API of a real kernel, on
// PostgreSQL and on the embedded database — agreement signed, fields extracted, a compliance
// review that misses its SLA and is escalated, a rejection that loops back for corrected
// documents, a kernel restart while the workflow waits for them, a second review approved with a
// correction, three configuration tasks for partner operations (with a second restart while one
// is open), training, activation — then the readiness view, the workflow metrics (API and
// Prometheus), the kernel's workflow events and the audit trail.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildPlugin } from '@trellis/plugin-sdk'
import { createKernel, type Kernel } from '../../../core/src/kernel.js'
import { loadConfig } from '../../../core/src/config.js'
import { createPlatformAdmin } from '../../../core/src/bootstrap.js'
import { verifyChain } from '../../../core/src/audit/verify.js'
import { ADMIN, createTestDatabase, DB_KINDS, type TestKernel } from '../../../core/test/helpers/test-kernel.js'
import { registerVersion } from '../../../core/test/helpers/plugin-versions.js'

const PLUGIN = '@trellis/partner-onboarding'
const dir = fileURLToPath(new URL('..', import.meta.url))
const manifest = JSON.parse(await readFile(new URL('../trellis.plugin.json', import.meta.url), 'utf8'))
const built = await buildPlugin({ dir, write: false })

// Short SLAs so the escalation happens within the test; the correction wait must outlive the restart.
const REVIEW_SLA_MS = 3000
// The document agent is off: this test is about the reviews (document-agent tests cover the agent).
const settings = {
  reviewSlaMs: REVIEW_SLA_MS,
  setupSlaMs: 3_600_000,
  correctionTimeoutMs: 600_000,
  documentAgent: false,
}

interface Reply {
  status: number
  body: any
}

function client(kernel: Kernel) {
  const req = async (method: string, url: string, token?: string, body?: unknown): Promise<Reply> => {
    const headers: Record<string, string> = {}
    if (token) headers.authorization = `Bearer ${token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await kernel.app.inject({
      method: method as 'GET',
      url,
      headers,
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    })
    const json =
      (res.headers['content-type'] ?? '').toString().includes('json') && res.body ? JSON.parse(res.body) : res.body
    return { status: res.statusCode, body: json }
  }
  const login = async (email: string, password: string) => {
    const r = await req('POST', '/v1/auth/login', undefined, { email, password })
    if (r.status !== 200) throw new Error(`login ${email}: ${r.status} ${JSON.stringify(r.body)}`)
    return r.body.accessToken as string
  }
  return { req, login }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  ms = 45_000,
  detail?: () => Promise<unknown>,
): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await probe()
    if (v) return v
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${detail ? `: ${JSON.stringify(await detail())}` : ''}`)
    await sleep(100)
  }
}

const doc = (name: string, contentType: 'text/plain' | 'text/csv' | 'application/json', content: string) => ({
  name,
  contentType,
  content,
})
// Round 1: the registration disagrees on the tax id, the profile names an unknown tier, nobody states the signatory.
const AGREEMENT = doc(
  'agreement.txt',
  'text/plain',
  'PARTNER AGREEMENT\nLegal name: Northwind Traders GmbH\nTax ID: DE 123 456 789\nRegion: EMEA\nStart date: 1 March 2027\n',
)
const REGISTRATION_BAD = doc(
  'registration.csv',
  'text/csv',
  'Legal name,Tax ID,Region\nNorthwind Traders GmbH,DE987654321,EMEA\n',
)
const PROFILE_BAD = doc(
  'profile.json',
  'application/json',
  JSON.stringify({ partner: { tier: 'diamond', region: 'EMEA' } }),
)
// Round 2: tax id and tier corrected; the signatory is still missing (compliance supplies it on approval).
const REGISTRATION_OK = doc(
  'registration.csv',
  'text/csv',
  'Legal name,Tax ID,Region\nNorthwind Traders GmbH,DE123456789,EMEA\n',
)
const PROFILE_OK = doc(
  'profile.json',
  'application/json',
  JSON.stringify({ partner: { tier: 'gold', region: 'EMEA' } }),
)

// One kernel (restarted twice) per database.
for (const kind of DB_KINDS)
  t.test(`on ${kind}`, async (t) => {
    // PostgreSQL: a fresh database; the embedded database: a fresh directory, so a restart finds its data.
    const db = kind === 'postgres' ? await createTestDatabase() : undefined
    if (db) t.teardown(db.drop)
    // The embedded database locks its directory's parent (trellis.pid): a directory of its own.
    const dataRoot = db ? undefined : await mkdtemp(join(tmpdir(), 'trellis-onboarding-'))
    if (dataRoot) t.teardown(() => rm(dataRoot, { recursive: true, force: true }))
    const embeddedDir = dataRoot ? join(dataRoot, 'pgdata') : 'memory://'
    // The same secret key for both kernels: signing keys and sealed settings are encrypted with it.
    const env: NodeJS.ProcessEnv = {
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      TRELLIS_SECRET_KEY: randomBytes(32).toString('hex'),
      TRELLIS_DATA_DIR: '/tmp/trellis-test-unused',
      PORT: '0',
      ...(db ? { DATABASE_URL: db.url } : {}),
    }
    const boot = () =>
      createKernel({
        config: loadConfig(env),
        embeddedDir,
        migrate: true,
        rateLimitPerMinute: 100_000,
        plugins: { sandboxWorkers: 1 },
      })

    let kernel = await boot()
    t.teardown(() => kernel.close())
    await createPlatformAdmin(kernel.ctx, { email: ADMIN.email, password: ADMIN.password })
    let api = client(kernel)
    // The Prometheus registry lives in the process, which every kernel of this file shares: counts are deltas.
    const promBefore = String((await api.req('GET', '/metrics')).body)

    const tenantSlug = 'northwind-distribution'
    const tenantAdmin = { email: `admin@${tenantSlug}.test`, password: `password-of-${tenantSlug}` }
    const people = {
      officer: { email: `officer@${tenantSlug}.test`, role: 'compliance_officer' },
      lead: { email: `lead@${tenantSlug}.test`, role: 'compliance_lead' },
      ops: { email: `ops@${tenantSlug}.test`, role: 'partner_ops' },
    } as const
    type Person = keyof typeof people
    const tokens: Record<Person | 'admin', string> = { admin: '', officer: '', lead: '', ops: '' }
    const userIds: Record<Person, string> = { officer: '', lead: '', ops: '' }
    const passwordOf = (email: string) => `password-of-${email}`

    async function signInEveryone() {
      tokens.admin = await api.login(tenantAdmin.email, tenantAdmin.password)
      for (const p of Object.keys(people) as Person[])
        tokens[p] = await api.login(people[p].email, passwordOf(people[p].email))
    }

    const x = (path: string) => `/v1/x/partner-onboarding${path}`
    const openTasks = async (who: Person) => {
      const r = await api.req('GET', '/v1/tasks?status=open', tokens[who])
      if (r.status !== 200) throw new Error(`GET /v1/tasks as ${who}: ${r.status} ${JSON.stringify(r.body)}`)
      return r.body.items as any[]
    }
    const instanceOf = async (id: string) => (await api.req('GET', `/v1/workflows/instances/${id}`, tokens.admin)).body
    const taskFor = (who: Person, pred: (task: any) => boolean, what: string, ms?: number) =>
      until(
        `${what} (as ${who})`,
        async () => (await openTasks(who)).find(pred),
        ms,
        async () => ({ instance: instanceId ? await instanceOf(instanceId) : null }),
      )

    let agreementId = ''
    let onboardingId = ''
    let instanceId = ''
    let tenantId = ''
    let installationId = ''

    t.test('setup: tenant, installation with consent, roles and people', async (t) => {
      const admin = await api.login(ADMIN.email, ADMIN.password)
      const tenant = await api.req('POST', '/v1/tenants', admin, {
        name: 'Northwind Distribution',
        slug: tenantSlug,
        admin: { email: tenantAdmin.email, name: 'Tenant admin', password: tenantAdmin.password },
      })
      t.equal(tenant.status, 201, JSON.stringify(tenant.body))
      tenantId = tenant.body.id
      tokens.admin = await api.login(tenantAdmin.email, tenantAdmin.password)

      await registerVersion({ kernel } as TestKernel, { manifest, code: built.code, sourceMap: built.sourceMap })
      const inst = await api.req('POST', '/v1/installations', tokens.admin, {
        plugin: PLUGIN,
        version: manifest.version,
        capabilities: manifest.capabilities,
        settings,
      })
      t.equal(inst.status, 201, JSON.stringify(inst.body))
      installationId = inst.body.id

      const roles: Record<string, string[]> = {
        compliance_officer: ['partner-onboarding.read'],
        compliance_lead: ['partner-onboarding.read'],
        partner_ops: ['partner-onboarding.read', 'partner-onboarding.manage'],
      }
      for (const [name, permissions] of Object.entries(roles)) {
        const r = await api.req('POST', '/v1/roles', tokens.admin, { name, permissions })
        t.equal(r.status, 201, `role ${name}: ${JSON.stringify(r.body)}`)
      }
      for (const p of Object.keys(people) as Person[]) {
        const invited = await api.req('POST', '/v1/invitations', tokens.admin, {
          email: people[p].email,
          role: people[p].role,
        })
        t.equal(invited.status, 201, `invite ${p}: ${JSON.stringify(invited.body)}`)
        const r = await api.req('POST', '/v1/invitations/accept', undefined, {
          token: invited.body.acceptToken,
          name: p,
          password: passwordOf(people[p].email),
        })
        t.equal(r.status, 200, `user ${p}: ${JSON.stringify(r.body)}`)
        userIds[p] = r.body.userId
      }
      await signInEveryone()
    })

    t.test('a signed agreement starts the onboarding and opens a compliance review', async (t) => {
      const signed = await api.req('POST', x('/agreements'), tokens.admin, {
        partnerName: 'Northwind Traders',
        reference: 'PA-2027-001',
        signedBy: 'Anna Schmidt',
        documents: [AGREEMENT, REGISTRATION_BAD, PROFILE_BAD],
      })
      t.equal(signed.status, 201, JSON.stringify(signed.body))
      agreementId = signed.body.agreement.id
      onboardingId = signed.body.onboarding.id

      const instance = await until('the instance started by partner-onboarding.agreement.signed', async () => {
        const r = await api.req(
          'GET',
          `/v1/workflows/instances?plugin=${encodeURIComponent(PLUGIN)}&workflow=onboarding`,
          tokens.admin,
        )
        t.equal(r.status, 200)
        return r.body.items?.[0]
      })
      instanceId = instance.id
      t.equal(instance.plugin, PLUGIN)
      t.equal(instance.workflow, 'onboarding')

      const review = await taskFor('officer', (x) => x.instanceId === instanceId, 'the compliance review')
      t.equal(review.role, 'compliance_officer')
      t.equal(review.status, 'open')
      t.same(review.outcomes, ['approve', 'reject'])
      t.match(review.title, /Compliance review: Northwind Traders/)
      t.ok(review.form && review.form.type === 'object', 'the form is the review form')
      t.ok(review.dueAt, 'the review has an SLA')
      t.same(
        review.data.problems.map((p: any) => [p.code, p.field]),
        [
          ['inconsistent_field', 'taxId'],
          ['unknown_value', 'tier'],
          ['missing_field', 'signatory'],
        ],
        'the problems found are what compliance sees',
      )
      t.equal(review.data.fields.taxId, 'DE123456789')
      t.same(await openTasks('ops'), [], 'partner operations sees nothing yet')

      const view = (await api.req('GET', x(`/onboardings/${onboardingId}`), tokens.officer)).body
      t.equal(view.status, 'in_review')
      t.equal(view.openRisks.length, 3, 'the readiness view shows the open risks')

      const waiting = await instanceOf(instanceId)
      t.equal(waiting.status, 'waiting')
      t.ok(
        waiting.tasks?.some((task: any) => task.id === review.id),
        'the instance lists its task',
      )
    })

    t.test('only the role acts, with valid form data; a missed SLA escalates to the compliance lead', async (t) => {
      const [review] = (await openTasks('officer')).filter((x) => x.instanceId === instanceId)
      const notMine = await api.req('POST', `/v1/tasks/${review.id}/complete`, tokens.ops, {
        outcome: 'approve',
        data: {},
      })
      t.same(
        [notMine.status, notMine.body.code],
        [403, 'WFL_ERR_NOT_YOUR_TASK'],
        'partner operations may not decide a compliance review',
      )
      const badForm = await api.req('POST', `/v1/tasks/${review.id}/complete`, tokens.officer, {
        outcome: 'approve',
        data: { overrides: { tier: 5 } },
      })
      t.same(
        [badForm.status, badForm.body.code],
        [400, 'WFL_ERR_FORM_INVALID'],
        'form data that does not match the form is refused',
      )
      const badOutcome = await api.req('POST', `/v1/tasks/${review.id}/complete`, tokens.officer, {
        outcome: 'maybe',
        data: {},
      })
      t.same(
        [badOutcome.status, badOutcome.body.code],
        [400, 'WFL_ERR_OUTCOME_INVALID'],
        'an outcome the task does not offer is refused',
      )
      const claimed = await api.req('POST', `/v1/tasks/${review.id}/claim`, tokens.officer)
      t.equal(claimed.status, 200, JSON.stringify(claimed.body))
      t.equal(claimed.body.status, 'claimed')

      // The officer claimed it and then did nothing: the SLA passes.
      const escalated = await taskFor('lead', (x) => x.id === review.id, 'the escalated review', REVIEW_SLA_MS + 30_000)
      t.ok(escalated.escalatedAt, 'escalatedAt is set')
      t.equal(escalated.role, 'compliance_lead')
      t.equal(escalated.status, 'open', 'the escalated task is open again for the lead')
      t.notOk(
        (await openTasks('officer')).some((x) => x.id === review.id),
        "it left the officer's list",
      )
      const late = await api.req('POST', `/v1/tasks/${review.id}/complete`, tokens.officer, {
        outcome: 'approve',
        data: {},
      })
      t.same([late.status, late.body.code], [403, 'WFL_ERR_NOT_YOUR_TASK'], 'the officer can no longer decide it')

      const rejected = await api.req('POST', `/v1/tasks/${review.id}/complete`, tokens.lead, {
        outcome: 'reject',
        data: { comment: 'Tax ids disagree and tier "diamond" does not exist; send corrected documents.' },
      })
      t.equal(rejected.status, 200, JSON.stringify(rejected.body))
      t.equal(rejected.body.status, 'completed')
      const twice = await api.req('POST', `/v1/tasks/${review.id}/complete`, tokens.lead, {
        outcome: 'approve',
        data: {},
      })
      t.same([twice.status, twice.body.code], [409, 'WFL_ERR_TASK_NOT_OPEN'], 'a decided task stays decided')

      const view = await until('the onboarding to await corrected documents', async () => {
        const v = (await api.req('GET', x(`/onboardings/${onboardingId}`), tokens.admin)).body
        return v.status === 'awaiting_documents' && v
      })
      t.same(
        view.decisions.map((d: any) => [d.outcome, d.by]),
        [['reject', userIds.lead]],
        'the decision and who made it',
      )
      const inst = await until(
        'the instance to wait for the event',
        async () => {
          const i = await instanceOf(instanceId)
          const last = i.history?.at(-1)
          return i.status === 'waiting' && last?.step === 'requestCorrections' && last?.status === 'completed' && i
        },
        15_000,
        () => instanceOf(instanceId),
      )
      t.equal(inst.status, 'waiting')
    })

    t.test('the kernel restarts while the onboarding waits for corrected documents', async (t) => {
      await kernel.close()
      kernel = await boot()
      api = client(kernel)
      await signInEveryone()
      const inst = await instanceOf(instanceId)
      t.equal(inst.status, 'waiting', 'the instance survived the restart, still waiting')
      const view = (await api.req('GET', x('/onboardings'), tokens.admin)).body
      t.same(
        view.items.map((o: any) => [o.id, o.status]),
        [[onboardingId, 'awaiting_documents']],
      )
      t.same(view.summary.byStatus, { awaiting_documents: 1 })
    })

    t.test('corrected documents resume the workflow; a second review is approved with a correction', async (t) => {
      const up = await api.req('POST', x(`/agreements/${agreementId}/documents`), tokens.ops, {
        documents: [REGISTRATION_OK, PROFILE_OK],
      })
      t.equal(up.status, 201, JSON.stringify(up.body))
      t.equal(up.body.round, 2)

      const review = await taskFor('officer', (x) => x.instanceId === instanceId, 'the second compliance review')
      t.match(review.title, /round 2/)
      t.same(
        review.data.problems.map((p: any) => [p.code, p.field]),
        [['missing_field', 'signatory']],
        'only the signatory is still missing',
      )
      const approver: Person = review.escalatedAt ? 'lead' : 'officer'
      let approved = await api.req('POST', `/v1/tasks/${review.id}/complete`, tokens[approver], {
        outcome: 'approve',
        data: { comment: 'Signatory confirmed against the signed PDF', overrides: { signatory: 'Anna Schmidt' } },
      })
      // On a slow machine the short SLA may pass between reading and deciding: then the lead decides.
      let approvedBy: Person = approver
      if (approved.status === 403 && approver === 'officer') {
        approvedBy = 'lead'
        approved = await api.req('POST', `/v1/tasks/${review.id}/complete`, tokens.lead, {
          outcome: 'approve',
          data: { comment: 'Signatory confirmed against the signed PDF', overrides: { signatory: 'Anna Schmidt' } },
        })
      }
      t.equal(approved.status, 200, JSON.stringify(approved.body))

      const view = await until('configuration to start', async () => {
        const v = (await api.req('GET', x(`/onboardings/${onboardingId}`), tokens.admin)).body
        return v.status === 'configuring' && v
      })
      t.equal(view.fields.signatory, 'Anna Schmidt', 'the correction applies')
      t.equal(view.fields.tier, 'gold')
      t.same(view.openRisks, [], 'no open risks after approval')
      t.equal(view.acceptedRisks, 1)
      t.same(
        view.decisions.map((d: any) => [d.outcome, d.by]),
        [
          ['reject', userIds.lead],
          ['approve', userIds[approvedBy]],
        ],
      )
    })

    t.test('partner operations configures the partner; training is assigned; the partner is activated', async (t) => {
      const steps: Array<[RegExp, Record<string, unknown>]> = [
        [/first tenant/, { tenantId: 'tn-northwind-01' }],
        [/default price list/, { priceListId: 'pl-northwind-eur', currency: 'EUR' }],
        [/users/, { users: 12, adminEmail: 'it@northwind.test' }],
      ]
      for (const [i, [title, data]] of steps.entries()) {
        if (i === 1) {
          // A second restart, while a person's task is open: the task and its instance survive it too.
          await kernel.close()
          kernel = await boot()
          api = client(kernel)
          await signInEveryone()
        }
        const task = await taskFor(
          'ops',
          (x) => x.instanceId === instanceId && title.test(x.title),
          `the task ${title}`,
        )
        t.equal(task.role, 'partner_ops')
        t.same(task.outcomes, ['done'])
        t.equal(
          (
            await api.req('POST', `/v1/tasks/${task.id}/complete`, tokens.ops, {
              outcome: 'done',
              data: { bogus: true },
            })
          ).body.code,
          'WFL_ERR_FORM_INVALID',
          'unknown form fields are refused',
        )
        t.equal((await api.req('POST', `/v1/tasks/${task.id}/claim`, tokens.ops)).status, 200)
        const done = await api.req('POST', `/v1/tasks/${task.id}/complete`, tokens.ops, { outcome: 'done', data })
        t.equal(done.status, 200, JSON.stringify(done.body))
      }

      const finished = await until('the instance to complete', async () => {
        const i = await instanceOf(instanceId)
        return (i.status === 'completed' || i.status === 'failed') && i
      })
      t.equal(finished.status, 'completed', JSON.stringify(finished.error))
      t.equal(finished.output.status, 'active')
      t.same(finished.output.setup, {
        tenantId: 'tn-northwind-01',
        priceListId: 'pl-northwind-eur',
        users: 12,
        adminEmail: 'it@northwind.test',
      })

      // Every step ran exactly as often as the path needs: nothing skipped, nothing doubled by the restart.
      const ran = finished.history.filter((h: any) => h.status === 'completed').map((h: any) => h.step)
      t.same(
        ran,
        [
          'intake',
          'extract',
          'requestCorrections',
          'extract',
          'setupTenant',
          'setupPriceList',
          'setupUsers',
          'assignTraining',
          'activate',
        ],
        'the step history',
      )
      t.same(
        finished.history.map((h: any) => h.seq),
        [...finished.history.map((h: any) => h.seq)].sort((a: number, b: number) => a - b),
        'history in order',
      )

      const view = (await api.req('GET', x('/onboardings'), tokens.officer)).body
      const o = view.items.find((i: any) => i.id === onboardingId)
      t.equal(o.status, 'active')
      t.same(o.openRisks, [])
      t.equal(o.trainingAssigned, 4, 'the gold curriculum')
      t.ok(o.timeToActivationMs > 0, 'time to activation')
      t.ok(o.activatedAt)
      t.same(view.summary, {
        total: 1,
        byStatus: { active: 1 },
        withOpenRisks: 0,
        activated: 1,
        medianTimeToActivationMs: o.timeToActivationMs,
      })
      const detail = (await api.req('GET', x(`/onboardings/${onboardingId}`), tokens.admin)).body
      t.same(
        detail.training.map((m: any) => m.module),
        ['platform-basics', 'compliance-essentials', 'tenant-administration', 'advanced-pricing'],
      )
      t.same(
        detail.documents.map((d: any) => [d.name, d.round]),
        [
          ['agreement.txt', 1],
          ['registration.csv', 1],
          ['profile.json', 1],
          ['registration.csv', 2],
          ['profile.json', 2],
        ],
      )
      t.same(await openTasks('ops'), [], 'no task left open')

      const closed = await api.req('POST', x(`/agreements/${agreementId}/documents`), tokens.ops, {
        documents: [PROFILE_OK],
      })
      t.equal(closed.status, 409)
      t.equal(closed.body.code, 'ONB_ERR_ONBOARDING_CLOSED', 'an active onboarding takes no more documents')
      const unknown = await api.req('POST', x('/agreements/no-such-agreement/documents'), tokens.ops, {
        documents: [PROFILE_OK],
      })
      t.equal(unknown.status, 404)
      t.equal(unknown.body.code, 'ONB_ERR_AGREEMENT_NOT_FOUND')
      const readOnly = await api.req('POST', x('/agreements'), tokens.officer, {
        partnerName: 'Nope',
        documents: [AGREEMENT],
      })
      t.equal(readOnly.status, 403, 'signing agreements in needs partner-onboarding.manage')
      t.equal((await api.req('GET', x('/onboardings'), tokens.admin)).body.items.length, 1, 'nothing was written')
    })

    t.test("afterwards: the kernel's workflow events, the metrics and the audit trail", async (t) => {
      const events: any[] = []
      let cursor: string | null = null
      do {
        const r = await api.req('GET', `/v1/events?limit=200${cursor ? `&cursor=${cursor}` : ''}`, tokens.admin)
        t.equal(r.status, 200)
        events.push(...r.body.items)
        cursor = r.body.nextCursor
      } while (cursor)
      const count = (type: string) => events.filter((e) => e.type === type).length
      t.equal(count('partner-onboarding.agreement.signed'), 1)
      t.equal(count('partner-onboarding.documents.corrected'), 1)
      t.equal(count('partner-onboarding.corrections.requested'), 1)
      t.equal(count('partner-onboarding.partner.activated'), 1)
      t.equal(count('workflow.instance.started'), 1, 'one instance, started once')
      t.equal(count('workflow.instance.completed'), 1)
      t.equal(count('workflow.instance.failed'), 0)
      t.equal(count('workflow.task.created'), 5, 'two reviews and three configuration tasks')
      t.equal(count('workflow.task.completed'), 5)
      t.ok(count('workflow.task.escalated') >= 1, 'the missed SLA')

      const metrics = await api.req('GET', '/v1/workflows/metrics', tokens.admin)
      t.equal(metrics.status, 200, 'GET /v1/workflows/metrics')
      const list: any[] = Array.isArray(metrics.body)
        ? metrics.body
        : (metrics.body.items ?? metrics.body.workflows ?? [])
      const m = list.find((w) => w.plugin === PLUGIN && w.workflow === 'onboarding')
      if (!m) t.fail(`no metrics for the onboarding workflow in ${JSON.stringify(metrics.body)}`)
      if (m) {
        t.equal(m.started, 1)
        t.equal(m.completed, 1)
        t.equal(m.failed, 0)
        t.equal(m.humanHandoffs, 5, 'human hand-offs')
        t.ok(m.slaBreaches >= 1, 'SLA breaches')
        t.ok(m.waitingOnPeopleMs?.total > 0, 'time waiting on people')
        t.ok(m.latencyMs?.p50 > 0, 'latency')
        const extract = m.steps?.find((s: any) => s.step === 'extract')
        t.equal(extract?.count, 2, 'extract ran twice (the loop back)')
      }

      // The same figures for Prometheus (labelled by plugin and workflow, never by tenant). The
      // registry lives in the process, which both kernels of this test shared.
      const prom = await api.req('GET', '/metrics')
      t.equal(prom.status, 200)
      const valueIn = (text: string, name: string, labels: string) => {
        const line = text
          .split('\n')
          .find((l) => l.startsWith(`${name}{`) && labels.split(',').every((kv) => l.includes(kv)))
        return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : null
      }
      const sample = (name: string, labels: string) => {
        const now = valueIn(String(prom.body), name, labels)
        return now === null ? null : now - (valueIn(promBefore, name, labels) ?? 0)
      }
      const ours = `plugin="${PLUGIN}",workflow="onboarding"`
      t.equal(
        sample('trellis_workflow_instances_total', `${ours},outcome="completed"`),
        1,
        'prometheus: instances completed',
      )
      t.equal(sample('trellis_workflow_tasks_total', `${ours},event="completed"`), 5, 'prometheus: tasks completed')
      t.ok((sample('trellis_workflow_tasks_total', `${ours},event="escalated"`) ?? 0) >= 1, 'prometheus: SLA breaches')

      const audit: any[] = []
      let before: string | null = null
      do {
        const r = await api.req(
          'GET',
          `/v1/audit?action=workflow.&limit=200${before ? `&cursor=${before}` : ''}`,
          tokens.admin,
        )
        t.equal(r.status, 200, JSON.stringify(r.body))
        audit.push(...r.body.items)
        before = r.body.nextCursor
      } while (before)
      const decisions = audit.filter((a) => a.action === 'workflow.task.completed').reverse()
      t.same(
        decisions.map((a) => [a.data.outcome, a.actor.id]),
        [
          ['reject', userIds.lead],
          ['approve', decisions[1]?.actor.id],
          ['done', userIds.ops],
          ['done', userIds.ops],
          ['done', userIds.ops],
        ],
        'every decision and who made it',
      )
      t.ok([userIds.officer, userIds.lead].includes(decisions[1]?.actor.id), 'compliance approved')
      t.ok(
        audit.some((a) => a.action === 'workflow.task.claimed' && a.actor.id === userIds.officer),
        'claims are audited',
      )

      await kernel.ctx.sealer.flush()
      const chain = await verifyChain(kernel.ctx.db, tenantId)
      t.ok(chain.ok, `the tenant's audit chain verifies: ${JSON.stringify(chain.brokenAt ?? {})}`)
    })

    t.test('a start through the API for an onboarding already under way ends without touching it', async (t) => {
      const started = await api.req('POST', '/v1/workflows/instances', tokens.admin, {
        plugin: PLUGIN,
        workflow: 'onboarding',
        input: { agreementId },
      })
      t.equal(started.status, 201, JSON.stringify(started.body))
      t.ok(started.body.id)
      const done = await until('the duplicate instance to end', async () => {
        const i = await instanceOf(started.body.id)
        return ['completed', 'failed'].includes(i.status) && i
      })
      t.equal(done.status, 'completed')
      t.same(done.output, { onboardingId, duplicate: true, status: 'active' })
      const view = (await api.req('GET', x(`/onboardings/${onboardingId}`), tokens.admin)).body
      t.equal(view.status, 'active', 'the onboarding is unchanged')
      const list = await api.req(
        'GET',
        `/v1/workflows/instances?plugin=${encodeURIComponent(PLUGIN)}&workflow=onboarding&status=completed`,
        tokens.admin,
      )
      t.same(list.body.items.map((i: any) => i.id).sort(), [instanceId, started.body.id].sort())
    })

    t.test('a rejected onboarding whose corrections never come expires', async (t) => {
      const patched = await api.req('PATCH', `/v1/installations/${installationId}`, tokens.admin, {
        settings: { correctionTimeoutMs: 1500, reviewSlaMs: 600_000 },
      })
      t.equal(patched.status, 200, JSON.stringify(patched.body))
      const signed = await api.req('POST', x('/agreements'), tokens.admin, {
        partnerName: 'Tailspin Toys',
        documents: [AGREEMENT],
      })
      t.equal(signed.status, 201)
      const id = signed.body.onboarding.id
      const review = await taskFor(
        'officer',
        (task) => task.data?.onboardingId === id,
        'the review of the second partner',
      )
      t.equal(
        (
          await api.req('POST', `/v1/tasks/${review.id}/complete`, tokens.officer, {
            outcome: 'reject',
            data: { comment: 'Signatory and tier missing' },
          })
        ).status,
        200,
      )
      const failed = await until('the wait to time out', async () => {
        const i = await instanceOf(review.instanceId)
        return ['completed', 'failed'].includes(i.status) && i
      })
      t.equal(failed.status, 'failed', 'no corrected documents in time: the instance fails')
      t.match(JSON.stringify(failed.error), /no corrected documents/)
      t.same(
        failed.history.filter((h: any) => h.status === 'completed').map((h: any) => h.step),
        ['intake', 'extract', 'requestCorrections', 'expire'],
      )
      const view = (await api.req('GET', x(`/onboardings/${id}`), tokens.admin)).body
      t.equal(view.status, 'expired')
      t.equal(view.elapsedMs, null)
      t.ok(view.openRisks.length > 0, 'its risks stay open in the readiness view')
      const late = await api.req('POST', x(`/agreements/${signed.body.agreement.id}/documents`), tokens.admin, {
        documents: [AGREEMENT],
      })
      t.same([late.status, late.body.code], [409, 'ONB_ERR_ONBOARDING_CLOSED'])
      const all = (await api.req('GET', x('/onboardings'), tokens.admin)).body
      t.same(all.summary.byStatus, { active: 1, expired: 1 })
      const m = (await api.req('GET', '/v1/workflows/metrics', tokens.admin)).body.workflows.find(
        (w: any) => w.workflow === 'onboarding',
      )
      t.equal(m.exceptions, 1, 'the expiry counts as an exception')
    })
  })
