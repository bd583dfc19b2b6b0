/**
 * What kind of document a partner submitted, and its key fields with a confidence each.
 *
 * A pure module: no I/O and no clock. Three proposers, in the order the document agent tries
 * them (./document-agent.ts):
 * - the tenant's chat model (a generative one answers in the agent's schema);
 * - {@link nearestKind}: the document's embedding against labelled example texts of each kind
 *   ({@link KIND_EXAMPLES}), with whatever embedding model the tenant uses — on the embedded
 *   default the lexical one, so this is word overlap with the examples, and says so;
 * - {@link kindByRules}: the document's name and heading, always below any threshold.
 * Key fields come from the extraction rules (./extract.ts) unless a chat model gave them.
 */
import {
  checkFields,
  FIELD_NAMES,
  extractFields,
  type ExtractOptions,
  type FieldName,
  type SourceDocument,
} from './extract.js'

/** The kinds of document an onboarding receives. */
export const DOCUMENT_KINDS = ['agreement', 'tax_certificate', 'bank_letter', 'insurance', 'other'] as const
export type DocumentKind = (typeof DOCUMENT_KINDS)[number]

/** A field's value as proposed, with how sure the proposer is (0..1). */
export type ProposedField = {
  value: string | null
  confidence: number
}

/** What the document agent proposes for one document. */
export type DocumentProposal = {
  kind: DocumentKind
  fields: Record<FieldName, ProposedField>
}

/** A kind with its confidence and why. */
export interface KindGuess {
  kind: DocumentKind
  confidence: number
  reasons: string[]
}

/**
 * Example texts of each kind, written for the vocabulary such documents use — not copies of any
 * document the agent is measured on. The kind whose examples a document is nearest to wins.
 */
export const KIND_EXAMPLES: Record<DocumentKind, string[]> = {
  agreement: [
    'Partner agreement between the vendor and the partner. The parties agree to the terms and conditions of the partner program: appointment, territory, obligations, fees, term and termination, confidentiality, governing law. Signed by the authorised signatory of each party; effective date; partner tier and region.',
    'Reseller agreement. This agreement is entered into by and between the company and the reseller. The reseller is appointed as a non-exclusive authorised reseller. Clauses: definitions, appointment, orders, pricing and discounts, intellectual property, liability, termination, entire agreement. In witness whereof the parties have executed this agreement.',
    'Master services and distribution contract: the distributor shall market and resell the products in the territory. Commencement date, initial term, renewal, notice of termination, limitation of liability, indemnification, assignment, counterparts, signatures of the parties.',
  ],
  tax_certificate: [
    'Certificate of VAT registration issued by the tax authority. This certifies that the business is registered for value added tax. VAT registration number, tax identification number, date of registration, tax office, registered name and address of the taxable person.',
    'Tax residence certificate. The tax office confirms that the company is resident for tax purposes and liable to corporation tax. Taxpayer identification number, fiscal year, issued by the revenue service, official stamp.',
    'IRS notice confirming the assignment of an employer identification number (EIN) to the entity. Keep this notice for your tax records; use the EIN on all federal tax returns and payments. Certificate of good standing with the tax administration.',
  ],
  bank_letter: [
    'Bank confirmation letter. We confirm that the account holder maintains a current account with our bank in good standing. Account name, IBAN, BIC / SWIFT code, account number, branch address, account opened on. Issued at the request of our customer; the bank accepts no liability.',
    'Letter of bank reference from the relationship manager: our client has banked with us since the year stated, the account is conducted satisfactorily and payments are met as they fall due. Routing number, sort code, account currency.',
    'Bank account details for payments to the partner: beneficiary name, bank name, IBAN, BIC, account currency, confirmed by the bank with its stamp and the signature of an authorised bank officer.',
  ],
  insurance: [
    'Certificate of insurance. The insurer certifies that the policy below has been issued to the insured named herein for the policy period indicated. Coverage: general liability, professional indemnity, product liability. Policy number, limits of liability, each occurrence, aggregate, deductible.',
    'Confirmation of cover from the insurance broker: the insured holds a commercial liability policy with the underwriter; premium paid, policy period from and to, sum insured, exclusions and endorsements, certificate holder.',
    'Cyber and errors and omissions insurance policy schedule: insured, insurer, policy number, period of insurance, limit of indemnity, retention, additional insured, cancellation notice to the certificate holder.',
  ],
  other: [
    'Company presentation and brochure: who we are, our customers, our products and services, our team, case studies, contact us.',
    'Meeting notes and action items from the kickoff call: attendees, agenda, next steps, follow up by next week.',
    'Invoice for services rendered: invoice number, invoice date, description, quantity, unit price, subtotal, total due, payment terms.',
    'Cover letter: please find attached the documents requested for our onboarding; do not hesitate to contact me with any questions. Kind regards.',
  ],
}

/** The texts to embed for {@link nearestKind}, one per example, kinds in {@link DOCUMENT_KINDS} order. */
export const EXAMPLE_TEXTS: string[] = DOCUMENT_KINDS.flatMap((k) => KIND_EXAMPLES[k])

/** The kind of each of {@link EXAMPLE_TEXTS}. */
const EXAMPLE_KINDS: DocumentKind[] = DOCUMENT_KINDS.flatMap((k) => KIND_EXAMPLES[k].map(() => k))

/** How much of a document is embedded: its heading and opening say what it is. */
export const CLASSIFY_CHARS = 6000

/** The text a document is classified by: its name (words of it) and the start of its content. */
export function classificationText(doc: SourceDocument): string {
  const name = doc.name.replace(/\.[a-z0-9]+$/i, '').replace(/[-_.]+/g, ' ')
  return `${name}\n${doc.content.slice(0, CLASSIFY_CHARS)}`
}

const dot = (a: number[], b: number[]) => {
  let s = 0
  for (let i = 0; i < Math.min(a.length, b.length); i++) s += a[i]! * b[i]!
  return s
}
const norm = (a: number[]) => Math.sqrt(dot(a, a))
const cosine = (a: number[], b: number[]) => {
  const n = norm(a) * norm(b)
  return n === 0 ? 0 : dot(a, b) / n
}

/**
 * The kind whose examples the document's vector is nearest to (each kind scored by its nearest
 * example). Confidence is the share of the best score the runner-up does not reach, so a
 * document as near one kind's examples as another's gets 0; a document near nothing (best
 * cosine under `minSimilarity`) is `other`, with the same measure.
 */
export function nearestKind(doc: number[], examples: number[][], minSimilarity = 0.08): KindGuess {
  const best = new Map<DocumentKind, number>()
  examples.forEach((v, i) => {
    const kind = EXAMPLE_KINDS[i]!
    best.set(kind, Math.max(best.get(kind) ?? -1, cosine(doc, v)))
  })
  const ranked = [...best.entries()].sort((a, b) => b[1] - a[1])
  const [top, second] = [ranked[0]!, ranked[1]!]
  const fmt = (n: number) => n.toFixed(3)
  if (top[1] < minSimilarity)
    return {
      kind: 'other',
      confidence: Math.max(0, 1 - top[1] / minSimilarity),
      reasons: [`no kind's examples are near (best ${top[0]} at ${fmt(top[1])} < ${minSimilarity})`],
    }
  const confidence = top[1] <= 0 ? 0 : Math.max(0, Math.min(1, 1 - Math.max(second[1], 0) / top[1]))
  return {
    kind: top[0],
    confidence,
    reasons: [`nearest to the ${top[0]} examples (${fmt(top[1])}), then ${second[0]} (${fmt(second[1])})`],
  }
}

const RULES: Array<[RegExp, DocumentKind]> = [
  [/\b(certificate of insurance|insurance|insurer|policy (number|no))\b/i, 'insurance'],
  [
    /\b(vat|tax|ein)\b.*\b(certificate|registration|notice)\b|\b(certificate|registration)\b.*\b(vat|tax)\b/i,
    'tax_certificate',
  ],
  [/\b(bank|iban|swift|bic)\b/i, 'bank_letter'],
  [/\b(agreement|contract)\b/i, 'agreement'],
]

/** Today's rules: keywords in the document's name and first lines. Never sure: a person confirms. */
export function kindByRules(doc: SourceDocument): KindGuess {
  const head = `${doc.name}\n${doc.content.split(/\r?\n/).slice(0, 3).join('\n')}`
  const hit = RULES.find(([re]) => re.test(head))
  return hit
    ? { kind: hit[1], confidence: 0.5, reasons: [`rule: "${hit[0].exec(head)?.[0]}" in the name or heading`] }
    : { kind: 'other', confidence: 0.3, reasons: ['rule: no keyword of a known kind in the name or heading'] }
}

/**
 * The key fields one document states, by the extraction rules: a labelled value that passes the
 * format checks is 0.9 sure, one that does not (an unknown tier, a malformed tax id) 0.4; a field
 * the document does not state is null with confidence 0. An unreadable document states nothing.
 */
export function fieldsByRules(doc: SourceDocument, options: ExtractOptions = {}): Record<FieldName, ProposedField> {
  const { candidates } = extractFields([doc], options)
  const { fields, problems } = checkFields(candidates, options)
  const flagged = new Set(problems.filter((p) => p.code !== 'missing_field').map((p) => p.field))
  return Object.fromEntries(
    FIELD_NAMES.map((f) => [
      f,
      fields[f] === null
        ? { value: null, confidence: 0 }
        : { value: fields[f], confidence: flagged.has(f) ? 0.4 : 0.9 },
    ]),
  ) as Record<FieldName, ProposedField>
}
