export { defineErrors, TrellisError, isTrellisError } from './errors.js'
export type { ErrorSpec, ErrorFactory, ErrorCatalog } from './errors.js'
