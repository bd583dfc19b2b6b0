// The catalog's records.
import type { PluginContext } from '@trellis/plugin-sdk'
import type { ImportChunk, ImportJob } from './import-job.js'

export interface Category {
  code: string
  name: string
  description?: string
}

export interface Supplier {
  code: string
  name: string
  contactName?: string
  country?: string
  city?: string
  phone?: string
}

export interface Product {
  sku: string
  name: string
  /** Category code. */
  category: string
  /** Supplier code. */
  supplier: string
  /** Free text as the supplier sells it, e.g. `10 boxes x 30 bags`. */
  quantityPerUnit?: string
  /** The selling unit, e.g. `boxes`. */
  unit: string
  /** How many units one pack holds. */
  packSize: number
  discontinued: boolean
}

export type Ctx = PluginContext<{
  categories: Category
  suppliers: Supplier
  products: Product
  imports: ImportJob
  importChunks: ImportChunk
}>
