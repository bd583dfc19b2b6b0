// @trellis/northwind: the Northwind sample data (Ms-PL, vendored with its licence in data/) and
// the importer that loads it into one tenant through the ERP plugins' own routes.
import { fileURLToPath } from 'node:url'

/** The folder holding the Northwind CSV files. */
export const NORTHWIND_DATA_DIR = fileURLToPath(new URL('./data', import.meta.url))

export { importNorthwind, readNorthwind, csvTotals, pluginTotals } from './import.js'
export type { ImportOptions, ImportResult, Reply, RequestFn } from './import.js'
export { importNorthwindSuppliers, type SupplierImportResult } from './suppliers.js'
