// CSV: parsing (RFC 4180), the columns of each import, and the values of its cells.

/** RFC 4180 CSV: quoted fields, doubled quotes, CRLF or LF. Returns rows of fields. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let field = ''
  let quoted = false
  let i = 0
  const s = text.replace(/^\uFEFF/, '')
  while (i < s.length) {
    const c = s[i]!
    if (quoted) {
      if (c === '"') {
        if (s[i + 1] === '"') {
          field += '"'
          i += 2
          continue
        }
        quoted = false
        i++
        continue
      }
      field += c
      i++
      continue
    }
    if (c === '"' && field === '') {
      quoted = true
      i++
    } else if (c === ',') {
      row.push(field)
      field = ''
      i++
    } else if (c === '\n' || c === '\r') {
      row.push(field)
      rows.push(row)
      row = []
      field = ''
      i += c === '\r' && s[i + 1] === '\n' ? 2 : 1
    } else {
      field += c
      i++
    }
  }
  if (field !== '' || row.length) {
    row.push(field)
    rows.push(row)
  }
  return rows.filter((r) => !(r.length === 1 && r[0] === ''))
}

/** `10 boxes x 30 bags` → pack of 10, unit `boxes`; anything else is a pack of 1. */
export function packOf(quantityPerUnit: string | undefined): { packSize: number; unit: string } {
  const m = /^\s*(\d+)\s*(?:-\s*)?(.*)$/.exec(quantityPerUnit ?? '')
  if (!m || Number(m[1]) < 1) return { packSize: 1, unit: quantityPerUnit?.trim() || 'each' }
  const unit = (m[2] ?? '').split(/\s+x\s+/)[0]!.trim()
  return { packSize: Number(m[1]), unit: unit || 'each' }
}

export const COLUMNS = {
  categories: { required: ['code', 'name'], optional: ['description'] },
  suppliers: { required: ['code', 'name'], optional: ['contact_name', 'country', 'city', 'phone'] },
  products: {
    required: ['sku', 'name', 'category', 'supplier'],
    optional: ['quantity_per_unit', 'unit', 'pack_size', 'discontinued'],
  },
} as const
export type Kind = keyof typeof COLUMNS

export const BOOL: Record<string, boolean> = {
  '1': true,
  '0': false,
  true: true,
  false: false,
  yes: true,
  no: false,
  y: true,
  n: false,
  '': false,
}
