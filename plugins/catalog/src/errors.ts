import { defineErrors, worded } from '@trellis/plugin-sdk'

/** The catalog plugin's errors: each answers as problem+json with its code, like the kernel's. */
export const CAT = defineErrors('CAT', {
  CODE_EXISTS: { status: 409, title: 'Code already exists', message: worded },
  CSV_EMPTY: { status: 422, title: 'Empty CSV', message: worded },
  CSV_HEADER: { status: 422, title: 'Invalid CSV header', message: worded },
  CSV_ROWS: { status: 422, title: 'Invalid CSV rows', message: worded },
  CSV_TOO_MANY_ROWS: { status: 413, title: 'Too many CSV rows', message: worded },
  IMPORT_NOT_FOUND: { status: 404, title: 'Import not found', message: worded },
  INVALID_PRODUCT: { status: 422, title: 'Invalid product', message: worded },
  PRODUCT_NOT_FOUND: { status: 404, title: 'Product not found', message: worded },
  SKU_EXISTS: { status: 409, title: 'SKU already exists', message: worded },
})
