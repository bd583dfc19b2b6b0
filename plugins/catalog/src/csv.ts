// CSV imports: the columns of each import and the values of its cells (parsing is the SDK's parseCsv).

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
