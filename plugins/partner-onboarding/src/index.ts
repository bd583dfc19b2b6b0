/**
 * The partner-onboarding accelerator: a signed partner agreement becomes an active partner.
 *
 * `POST /agreements` stores the agreement and its documents and emits
 * `partner-onboarding.agreement.signed`, which starts the `onboarding` workflow (manifest
 * `start.events`). The workflow has each document classified by an agent (./document-agent.ts;
 * a person confirms the unsure ones), extracts the key fields from the documents (`extract`, rules
 * in ./extract.ts), asks compliance to review missing or inconsistent fields (a human task;
 * a rejection waits for `partner-onboarding.documents.corrected`, which
 * `POST /agreements/:id/documents` emits, and extracts again), hands configuration to
 * partner operations (first tenant, default price list, users: one human task each), assigns
 * training, and activates the partner. `GET /onboardings` is the readiness view.
 */
import { collection, defineWorkflow, definePlugin } from '@trellis/plugin-sdk'
import manifest from '../trellis.plugin.json' with { type: 'json' }
import type { Agreement, Collections, Onboarding, OnboardingDocument, TrainingAssignment } from './types.js'
import { getOnboarding, listOnboardings, signAgreement, uploadDocuments } from './routes.js'
import { expire, extract, intake, requestCorrections } from './review-steps.js'
import { activate, assignTraining, setupPriceList, setupTenant, setupUsers } from './setup-steps.js'
import { classified, classify, classifyDecided } from './document-agent.js'

export * from './extract.js'
export * from './classify.js'
export { documentAgent, type DocumentInput } from './document-agent.js'
export * from './types.js'
export { DEFAULTS, DEFAULT_TRAINING } from './defaults.js'
export { ONB } from './errors.js'
export { onboardingIdOf, REVIEW_FORM } from './step-input.js'

/** The onboarding workflow: its steps, in the order the manifest lists them. */
export const onboardingWorkflow = defineWorkflow({
  steps: {
    intake,
    extract,
    setupTenant,
    setupPriceList,
    setupUsers,
    assignTraining,
    activate,
    requestCorrections,
    expire,
    classify,
    classifyDecided,
    classified,
  },
})

export const partnerOnboardingPlugin = definePlugin<Collections>({
  manifest,
  collections: {
    agreements: collection<Agreement>(),
    onboardings: collection<Onboarding>(),
    documents: collection<OnboardingDocument>(),
    training: collection<TrainingAssignment>(),
  },
  routes: {
    'POST /agreements': signAgreement,
    'POST /agreements/:id/documents': uploadDocuments,
    'GET /onboardings': listOnboardings,
    'GET /onboardings/:id': getOnboarding,
  },
  workflows: { onboarding: onboardingWorkflow },
})
