import { defineErrors, worded } from '@trellis/plugin-sdk'

/** The procurement plugin's errors: each answers as problem+json with its code, like the kernel's. */
export const PUR = defineErrors('PUR', {
  FORECAST_NOT_FOUND: { status: 404, title: 'Forecast not found', message: worded },
  INVALID_FORECAST: { status: 422, title: 'Invalid demand forecast', message: worded },
  INVALID_ROWS: { status: 422, title: 'Invalid rows', message: worded },
  INVALID_LINES: { status: 422, title: 'Invalid purchase order lines', message: worded },
  INVALID_TRANSITION: { status: 409, title: 'Invalid purchase order transition', message: worded },
  INVOICE_EXISTS: { status: 409, title: 'Supplier invoice already recorded', message: worded },
  INVOICE_NOT_FOUND: { status: 404, title: 'Supplier invoice not found', message: worded },
  NO_OPEN_EXCEPTION: { status: 409, title: 'No open invoice exception', message: worded },
  OVER_DELIVERY: { status: 409, title: 'Delivery exceeds the order', message: worded },
  PO_EXISTS: { status: 409, title: 'Purchase order already exists', message: worded },
  PO_NOT_FOUND: { status: 404, title: 'Purchase order not found', message: worded },
  SELF_APPROVAL: { status: 403, title: 'Own purchase order', message: worded },
  SUPPLIER_NOT_FOUND: { status: 404, title: 'Supplier not found', message: worded },
  UNKNOWN_SUPPLIER: { status: 422, title: 'Unknown supplier', message: worded },
})
