// The rule-based extraction, as a pure function.
import t from 'tap'
import { extractFields, parseCsv, parseDate, taxIdValid, fieldOfLabel, type SourceDocument } from '../src/extract.js'

const text = (content: string, name = 'agreement.txt'): SourceDocument => ({ name, contentType: 'text/plain', content })
const csv = (content: string, name = 'registration.csv'): SourceDocument => ({ name, contentType: 'text/csv', content })
const json = (content: unknown, name = 'profile.json'): SourceDocument => ({
  name,
  contentType: 'application/json',
  content: typeof content === 'string' ? content : JSON.stringify(content),
})

const AGREEMENT = `PARTNER AGREEMENT
Legal name: Northwind Traders GmbH
Tax ID: DE 123 456 789
Region: EMEA
Tier: Gold
Signatory: Anna Schmidt
Start date: 1 March 2027
Some prose without a label.`

t.test('labels from text, CSV and JSON map to the six fields', async (t) => {
  t.equal(fieldOfLabel('Tax ID'), 'taxId')
  t.equal(fieldOfLabel('VAT number'), 'taxId')
  t.equal(fieldOfLabel('legal_name'), 'legalName')
  t.equal(fieldOfLabel('Effective date'), 'startDate')
  t.equal(fieldOfLabel('Signed by'), 'signatory')
  t.equal(fieldOfLabel('Colour'), null)

  const fromText = extractFields([text(AGREEMENT)])
  t.same(fromText.fields, {
    legalName: 'Northwind Traders GmbH',
    taxId: 'DE123456789',
    region: 'EMEA',
    tier: 'gold',
    signatory: 'Anna Schmidt',
    startDate: '2027-03-01',
  })
  t.same(fromText.problems, [])
  t.equal(fromText.extractor, 'rules')

  const fromCsv = extractFields([
    csv(
      'Legal Name,Tax ID,Region,Tier,Signatory,Start Date\r\n"Northwind Traders, GmbH",DE123456789,emea,gold,Anna Schmidt,2027-03-01\r\n',
    ),
  ])
  t.same(
    fromCsv.fields,
    {
      legalName: 'Northwind Traders, GmbH',
      taxId: 'DE123456789',
      region: 'EMEA',
      tier: 'gold',
      signatory: 'Anna Schmidt',
      startDate: '2027-03-01',
    },
    'quoted commas, case of region',
  )
  t.same(fromCsv.problems, [])

  const vertical = extractFields([
    csv(
      'field,value\nlegal name,Northwind Traders GmbH\ntax id,DE123456789\nregion,Europe\ntier,silver\nsignatory,Anna Schmidt\neffective date,01.03.2027\n',
    ),
  ])
  t.same(
    vertical.fields,
    {
      legalName: 'Northwind Traders GmbH',
      taxId: 'DE123456789',
      region: 'EMEA',
      tier: 'silver',
      signatory: 'Anna Schmidt',
      startDate: '2027-03-01',
    },
    'a field,value sheet and region aliases',
  )

  const fromJson = extractFields([
    json({
      company: { name: 'Northwind Traders GmbH', vatNumber: 'DE123456789' },
      partner: { tier: 'platinum', region: 'APAC' },
      contract: { signatory: 'Anna Schmidt', startDate: '2027-03-01' },
    }),
  ])
  t.same(
    fromJson.fields,
    {
      legalName: 'Northwind Traders GmbH',
      taxId: 'DE123456789',
      region: 'APAC',
      tier: 'platinum',
      signatory: 'Anna Schmidt',
      startDate: '2027-03-01',
    },
    'nested keys',
  )
  t.same(fromJson.problems, [])
})

t.test('documents that agree are one value; documents that disagree are a problem', async (t) => {
  const agree = extractFields([text(AGREEMENT), csv('Tax ID,Legal name\nDE-123-456-789,northwind traders  gmbh\n')])
  t.same(agree.problems, [], 'the same tax id written differently, the same name in another case')
  t.same(agree.candidates.taxId, [
    { value: 'DE123456789', document: 'agreement.txt' },
    { value: 'DE123456789', document: 'registration.csv' },
  ])

  const disagree = extractFields([text(AGREEMENT), csv('Tax ID\nDE987654321\n')])
  t.same(
    disagree.problems.map((p) => [p.code, p.field]),
    [['inconsistent_field', 'taxId']],
  )
  t.equal(disagree.fields.taxId, 'DE123456789', 'the first document wins')
  t.same(disagree.problems[0]!.values, [
    { value: 'DE123456789', document: 'agreement.txt' },
    { value: 'DE987654321', document: 'registration.csv' },
  ])
})

t.test('missing fields, bad formats, unknown values and unreadable documents', async (t) => {
  const r = extractFields([
    text('Legal name: Acme\nTax ID: DE12345\nTier: diamond\nRegion: Mars\nStart date: 31.02.2027'),
    json('{ not json', 'broken.json'),
  ])
  const got = r.problems.map((p) => [p.code, p.field ?? p.document])
  t.same(got, [
    ['unreadable_document', 'broken.json'],
    ['invalid_format', 'taxId'],
    ['unknown_value', 'region'],
    ['unknown_value', 'tier'],
    ['missing_field', 'signatory'],
    ['invalid_format', 'startDate'],
  ])
  t.same(
    extractFields([]).problems.map((p) => p.code),
    [
      'no_documents',
      'missing_field',
      'missing_field',
      'missing_field',
      'missing_field',
      'missing_field',
      'missing_field',
    ],
  )
  const custom = extractFields([text(AGREEMENT.replace('Gold', 'Diamond').replace('EMEA', 'Nordics'))], {
    tiers: ['diamond'],
    regions: ['Nordics'],
  })
  t.same(custom.problems, [], 'tiers and regions come from the settings')
  t.equal(custom.fields.region, 'Nordics')
})

t.test('tax ids, dates and CSV parsing', async (t) => {
  for (const ok of [
    'DE123456789',
    'FRXX123456789',
    'GB123456789',
    'NL123456789B01',
    'ATU12345678',
    '123456789',
    'CHE123456789MWST',
    'NO123456789MVA',
  ])
    t.ok(taxIdValid(ok), ok)
  for (const bad of ['DE12345678', 'DE1234567890', 'NL123456789', 'XX', '12345', 'ABCDEFGHIJ'])
    t.notOk(taxIdValid(bad), bad)
  t.equal(parseDate('2027-03-01'), '2027-03-01')
  t.equal(parseDate('2027/3/1'), '2027-03-01')
  t.equal(parseDate('March 1, 2027'), '2027-03-01')
  t.equal(parseDate('1 Mar 2027'), '2027-03-01')
  t.equal(parseDate('2027-02-30'), null)
  t.equal(parseDate('next monday'), null)
  t.same(parseCsv('a,"b ""quoted"", and\nmore",c\n\n1,2,3'), [
    ['a', 'b "quoted", and\nmore', 'c'],
    ['1', '2', '3'],
  ])
  t.throws(() => parseCsv('a,"unterminated'))
})
