/**
 * Rule-based extraction of a partner's key fields from the documents of an onboarding.
 *
 * A pure module: documents in, fields and problems out, no I/O and no clock. The workflow's
 * `extract` step calls {@link extractFields}; an AI extractor (arriving with the AI issue) only
 * has to return the same {@link Extraction} shape to take its place in that step, and
 * {@link checkFields} applies the same consistency and format rules to whatever it finds.
 */
import { parseCsv as sdkParseCsv } from '@trellis/plugin-sdk/csv'

/** Content types the plugin reads. */
export type DocumentContentType = 'text/plain' | 'text/csv' | 'application/json'

/** A document as uploaded. */
export interface SourceDocument {
  name: string
  contentType: DocumentContentType
  content: string
}

/** The key fields of a partner agreement. */
export const FIELD_NAMES = ['legalName', 'taxId', 'region', 'tier', 'signatory', 'startDate'] as const
export type FieldName = (typeof FIELD_NAMES)[number]
export type Fields = Record<FieldName, string | null>

/** One value of a field found in one document. */
export interface Candidate {
  value: string
  document: string
}

/** Why a human must look at the onboarding. */
export interface Problem {
  code:
    | 'no_documents'
    | 'unreadable_document'
    | 'missing_field'
    | 'inconsistent_field'
    | 'invalid_format'
    | 'unknown_value'
  field: FieldName | null
  document?: string
  message: string
  values?: Candidate[]
}

/** What an extractor returns. */
export interface Extraction {
  /** Which extractor produced it (`rules`, later e.g. `ai:<model>`). */
  extractor: string
  /** The chosen value per field (normalised), or null when none was found. */
  fields: Fields
  /** Every value found, per field, with the document it came from. */
  candidates: Record<FieldName, Candidate[]>
  problems: Problem[]
}

/** What the rules accept; the installation's settings may narrow or widen it. */
export interface ExtractOptions {
  tiers?: string[]
  regions?: string[]
  /**
   * Values already decided per document (by name): the document agent's proposal, or the person
   * who corrected it. They take the place of what the rules read in that document; the checks
   * apply to them the same.
   */
  proposed?: Map<string, Partial<Record<FieldName, string | null>>>
}

export const DEFAULT_TIERS = ['registered', 'silver', 'gold', 'platinum']
export const DEFAULT_REGIONS = ['NA', 'EMEA', 'APAC', 'LATAM']

const LABELS: Record<FieldName, string[]> = {
  legalName: [
    'legalname',
    'legalentity',
    'legalentityname',
    'registeredname',
    'companyname',
    'company',
    'companylegalname',
    'partnerlegalname',
    'entityname',
  ],
  taxId: [
    'taxid',
    'taxidentifier',
    'taxnumber',
    'taxno',
    'tin',
    'vat',
    'vatid',
    'vatnumber',
    'vatno',
    'ein',
    'taxregistrationnumber',
    'ustidnr',
  ],
  region: ['region', 'territory', 'salesregion', 'market'],
  tier: ['tier', 'partnertier', 'partnerlevel', 'level', 'programtier'],
  signatory: ['signatory', 'signedby', 'authorizedsignatory', 'authorisedsignatory', 'signer', 'signatoryname'],
  startDate: [
    'startdate',
    'effectivedate',
    'commencementdate',
    'start',
    'effectivefrom',
    'contractstart',
    'contractstartdate',
  ],
}
const LABEL_TO_FIELD = new Map<string, FieldName>(
  FIELD_NAMES.flatMap((f) => LABELS[f].map((l) => [l, f] as [string, FieldName])),
)

const REGION_ALIASES: Record<string, string> = {
  northamerica: 'NA',
  usa: 'NA',
  us: 'NA',
  unitedstates: 'NA',
  canada: 'NA',
  europe: 'EMEA',
  eu: 'EMEA',
  europemiddleeastafrica: 'EMEA',
  asiapacific: 'APAC',
  asia: 'APAC',
  latinamerica: 'LATAM',
  southamerica: 'LATAM',
}

/** VAT and tax-number formats by country prefix; a US EIN is nine digits. */
const TAX_ID_FORMATS: Record<string, RegExp> = {
  AT: /^ATU\d{8}$/,
  BE: /^BE[01]\d{9}$/,
  CH: /^CHE\d{9}(MWST|TVA|IVA)?$/,
  DE: /^DE\d{9}$/,
  DK: /^DK\d{8}$/,
  ES: /^ES[A-Z0-9]\d{7}[A-Z0-9]$/,
  FR: /^FR[A-HJ-NP-Z0-9]{2}\d{9}$/,
  GB: /^GB(\d{9}|\d{12})$/,
  IE: /^IE(\d{7}[A-W][A-I]?|\d[A-Z+*]\d{5}[A-W])$/,
  IT: /^IT\d{11}$/,
  NL: /^NL\d{9}B\d{2}$/,
  PL: /^PL\d{10}$/,
  SE: /^SE\d{12}$/,
}

const MONTHS = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
]

const labelKey = (label: string) => label.toLowerCase().replace(/[^a-z0-9]/g, '')
const collapse = (s: string) => s.replace(/\s+/g, ' ').trim()

/** The field a label names (`"Tax ID"`, `"VAT number"`, `"legal_name"`), or null. */
export function fieldOfLabel(label: string): FieldName | null {
  return LABEL_TO_FIELD.get(labelKey(label)) ?? null
}

/** A value in the form the rules compare and store (tax ids compact and upper-case, dates ISO, tiers lower-case). */
export function normaliseValue(field: FieldName, raw: string, options: ExtractOptions = {}): string {
  const v = collapse(raw).replace(/^["']|["']$/g, '')
  switch (field) {
    case 'taxId':
      return v.toUpperCase().replace(/[\s.\-/]/g, '')
    case 'tier':
      return v.toLowerCase()
    case 'region': {
      const allowed = options.regions ?? DEFAULT_REGIONS
      const hit = allowed.find((r) => r.toLowerCase() === v.toLowerCase())
      return hit ?? REGION_ALIASES[labelKey(v)] ?? v.toUpperCase()
    }
    case 'startDate':
      return parseDate(v) ?? v
    default:
      return v.replace(/[.,;]+$/, '')
  }
}

/** `YYYY-MM-DD` for `2027-03-01`, `2027/03/01`, `01.03.2027`, `1 March 2027`, `March 1, 2027`; null otherwise. */
export function parseDate(s: string): string | null {
  const iso = (y: number, m: number, d: number) => {
    const t = Date.UTC(y, m - 1, d)
    const date = new Date(t)
    if (date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) return null
    return `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`
  }
  let m = /^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(T.*)?$/.exec(s)
  if (m) return iso(+m[1]!, +m[2]!, +m[3]!)
  m = /^(\d{1,2})\.(\d{1,2})\.(\d{4})$/.exec(s)
  if (m) return iso(+m[3]!, +m[2]!, +m[1]!)
  m = /^(\d{1,2})\s+([A-Za-z]+)\.?\s+(\d{4})$/.exec(s)
  if (m) {
    const month = monthOf(m[2]!)
    return month ? iso(+m[3]!, month, +m[1]!) : null
  }
  m = /^([A-Za-z]+)\.?\s+(\d{1,2}),?\s+(\d{4})$/.exec(s)
  if (m) {
    const month = monthOf(m[1]!)
    return month ? iso(+m[3]!, month, +m[2]!) : null
  }
  return null
}

function monthOf(name: string): number | null {
  const n = name.toLowerCase()
  if (n.length < 3) return null
  const i = MONTHS.findIndex((month) => month.startsWith(n))
  return i < 0 ? null : i + 1
}

/** Whether a (normalised) tax id has a known shape: a VAT number with its country prefix, or a US EIN. */
export function taxIdValid(taxId: string): boolean {
  if (/^\d{9}$/.test(taxId)) return true
  const prefix = taxId.slice(0, 2)
  const known = TAX_ID_FORMATS[prefix]
  if (known) return known.test(taxId)
  return /^[A-Z]{2}(?=[A-Z0-9]*\d)[A-Z0-9]{8,12}$/.test(taxId)
}

/** `Label: value` (or `Label = value`) lines; bullets and surrounding spaces are ignored. */
export function pairsFromText(content: string): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (const line of content.split(/\r?\n/)) {
    const m = /^\s*(?:[-*•]\s*)?([A-Za-z][A-Za-z0-9 _./()-]{0,60}?)\s*[:=]\s*(.*?)\s*$/.exec(line)
    if (m?.[2]) out.push([m[1]!, m[2]])
  }
  return out
}

/** RFC 4180 rows (the SDK's parser), rows of blank fields left out; throws on an unterminated quote. */
export function parseCsv(content: string): string[][] {
  return sdkParseCsv(content).filter((r) => r.some((f) => f.trim() !== ''))
}

/**
 * `label, value` pairs of a CSV document: a header row naming the fields with one or more data
 * rows, or a two-column `field,value` (or `label,value`, `key,value`) sheet read vertically.
 */
export function pairsFromCsv(content: string): Array<[string, string]> {
  const rows = parseCsv(content)
  if (!rows.length) return []
  const header = rows[0]!.map((h) => labelKey(h))
  const out: Array<[string, string]> = []
  if (header.length === 2 && ['field', 'label', 'key', 'name'].includes(header[0]!) && header[1] === 'value') {
    for (const r of rows.slice(1)) if (r[0] !== undefined && r[1] !== undefined) out.push([r[0], r[1]])
    return out
  }
  for (const r of rows.slice(1)) rows[0]!.forEach((h, i) => r[i] !== undefined && out.push([h, r[i]!]))
  return out
}

/** `label, value` pairs of a JSON document: keys at any depth (`{ partner: { legalName } }`), arrays element by element. */
export function pairsFromJson(content: string): Array<[string, string]> {
  const out: Array<[string, string]> = []
  const walk = (v: unknown, path: string[], depth: number) => {
    if (depth > 8) return
    if (Array.isArray(v)) for (const x of v) walk(x, path, depth + 1)
    else if (v !== null && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) walk(x, [...path, k], depth + 1)
    else if ((typeof v === 'string' || typeof v === 'number') && path.length) {
      const last = path[path.length - 1]!
      // `partner.tier` → tier; `company.name` → company name.
      const label = fieldOfLabel(last) ? last : path.slice(-2).join(' ')
      out.push([label, String(v)])
    }
  }
  walk(JSON.parse(content), [], 0)
  return out
}

/** The label/value pairs of one document, by its content type. */
export function pairsOf(doc: SourceDocument): Array<[string, string]> {
  if (doc.contentType === 'text/csv') return pairsFromCsv(doc.content)
  if (doc.contentType === 'application/json') return pairsFromJson(doc.content)
  return pairsFromText(doc.content)
}

/**
 * Applies the rules to the values found: every field present, one value per field across the
 * documents, a tax id of a known shape, a known tier and region, a real start date. The first
 * document's value wins when documents disagree (and the disagreement is a problem).
 */
export function checkFields(
  candidates: Record<FieldName, Candidate[]>,
  options: ExtractOptions = {},
): { fields: Fields; problems: Problem[] } {
  const tiers = (options.tiers ?? DEFAULT_TIERS).map((t) => t.toLowerCase())
  const regions = options.regions ?? DEFAULT_REGIONS
  const fields = {} as Fields
  const problems: Problem[] = []
  for (const field of FIELD_NAMES) {
    const found = candidates[field] ?? []
    if (!found.length) {
      fields[field] = null
      problems.push({ code: 'missing_field', field, message: `no document states the ${describe(field)}` })
      continue
    }
    const value = found[0]!.value
    fields[field] = value
    const distinct = [...new Set(found.map((c) => compareKey(field, c.value)))]
    if (distinct.length > 1) {
      problems.push({
        code: 'inconsistent_field',
        field,
        message: `the documents disagree on the ${describe(field)}: ${distinctValues(field, found).join(' vs ')}`,
        values: found,
      })
    }
    for (const v of distinctValues(field, found)) {
      const bad = formatProblem(field, v, tiers, regions)
      if (bad)
        problems.push({ ...bad, values: found.filter((c) => compareKey(field, c.value) === compareKey(field, v)) })
    }
  }
  return { fields, problems }
}

/** Extracts the key fields from an onboarding's documents with the rules. */
export function extractFields(documents: SourceDocument[], options: ExtractOptions = {}): Extraction {
  const candidates = Object.fromEntries(FIELD_NAMES.map((f) => [f, [] as Candidate[]])) as Record<
    FieldName,
    Candidate[]
  >
  const problems: Problem[] = []
  if (!documents.length)
    problems.push({ code: 'no_documents', field: null, message: 'the onboarding has no documents' })
  for (const doc of documents) {
    let pairs: Array<[string, string]>
    try {
      pairs = pairsOf(doc)
    } catch (err) {
      problems.push({
        code: 'unreadable_document',
        field: null,
        document: doc.name,
        message: `${doc.name} could not be read as ${doc.contentType}: ${(err as Error).message}`,
      })
      continue
    }
    const decided = options.proposed?.get(doc.name)
    if (decided) pairs = FIELD_NAMES.flatMap((f) => (decided[f] ? [[f, decided[f]] as [string, string]] : []))
    const seen = new Set<string>()
    for (const [label, raw] of pairs) {
      const field = fieldOfLabel(label)
      if (!field || !raw.trim()) continue
      const value = normaliseValue(field, raw, options)
      const key = `${field}\u0000${compareKey(field, value)}`
      if (seen.has(key)) continue // one document repeating itself is one statement
      seen.add(key)
      candidates[field].push({ value, document: doc.name })
    }
  }
  const checked = checkFields(candidates, options)
  return { extractor: 'rules', fields: checked.fields, candidates, problems: [...problems, ...checked.problems] }
}

function compareKey(field: FieldName, value: string): string {
  return field === 'legalName' || field === 'signatory' ? collapse(value).toLowerCase() : value
}

function distinctValues(field: FieldName, found: Candidate[]): string[] {
  const byKey = new Map<string, string>()
  for (const c of found) if (!byKey.has(compareKey(field, c.value))) byKey.set(compareKey(field, c.value), c.value)
  return [...byKey.values()]
}

function formatProblem(field: FieldName, value: string, tiers: string[], regions: string[]): Problem | null {
  if (field === 'taxId' && !taxIdValid(value))
    return {
      code: 'invalid_format',
      field,
      message: `tax id ${value} is not a VAT number with a known country prefix or a US EIN`,
    }
  if (field === 'tier' && !tiers.includes(value))
    return { code: 'unknown_value', field, message: `tier "${value}" is not one of ${tiers.join(', ')}` }
  if (field === 'region' && !regions.includes(value))
    return { code: 'unknown_value', field, message: `region "${value}" is not one of ${regions.join(', ')}` }
  if (field === 'startDate' && !/^\d{4}-\d{2}-\d{2}$/.test(value))
    return { code: 'invalid_format', field, message: `start date "${value}" is not a date` }
  return null
}

function describe(field: FieldName): string {
  return {
    legalName: 'legal name',
    taxId: 'tax id',
    region: 'region',
    tier: 'tier',
    signatory: 'signatory',
    startDate: 'start date',
  }[field]
}
