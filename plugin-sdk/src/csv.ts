/**
 * The one CSV parser of Trellis: csv-parse (RFC 4180: quoted fields holding commas, line breaks
 * and doubled quotes; CRLF or LF; a byte-order mark) behind two small functions, for plugins
 * (`import { parseCsv } from '@trellis/plugin-sdk/csv'`, bundled into the plugin) and for the
 * kernel and tools (`@trellis/plugin-sdk`). In a plugin bundle `trellis-plugin build` swaps in
 * csv-parse's build without Node APIs; only plugins that import this module carry it.
 */
import { parse } from 'csv-parse/sync'

/** Options of {@link parseCsv} and {@link parseCsvRecords}. */
export interface CsvOptions {
  /** Stop after this many rows (header included for {@link parseCsv}); the caller decides whether more is an error. */
  maxRows?: number
  /** Trim spaces around each field. Default false. */
  trim?: boolean
}

/** A CSV that cannot be read: an unterminated quote, a stray quote inside a field… */
export class CsvSyntaxError extends Error {
  /** 1-based line of the input where the parser stopped. */
  readonly line: number | undefined
  constructor(reason: string, line: number | undefined) {
    super(reason)
    this.name = 'CsvSyntaxError'
    this.line = line
  }
}

/**
 * Rows of fields, empty lines skipped. Rows may have different lengths (check them against
 * the header yourself, to report the row).
 *
 * @example
 * ```ts
 * const [header, ...rows] = parseCsv('sku,name\r\nA-1,"Chai, 10 boxes"\r\n')
 * // header = ['sku', 'name'], rows = [['A-1', 'Chai, 10 boxes']]
 * ```
 * @throws {@link CsvSyntaxError} when the text is not CSV.
 */
export function parseCsv(text: string, options: CsvOptions = {}): string[][] {
  try {
    return parse(text, {
      bom: true,
      skip_empty_lines: true,
      record_delimiter: ['\r\n', '\n', '\r'],
      relax_column_count: true,
      trim: options.trim ?? false,
      ...(options.maxRows !== undefined ? { to: options.maxRows } : {}),
    }) as string[][]
  } catch (err) {
    const e = err as Error & { lines?: number }
    throw new CsvSyntaxError(e.message.replace(/^Invalid (Opening|Closing) Quote: /, ''), e.lines)
  }
}

/**
 * Records keyed by the header row's names (`{ sku: 'A-1', name: '…' }`); a field missing at the
 * end of a row is `''`. `maxRows` counts the header.
 *
 * @throws {@link CsvSyntaxError} when the text is not CSV.
 */
export function parseCsvRecords(text: string, options: CsvOptions = {}): Array<Record<string, string>> {
  const [header, ...rows] = parseCsv(text, options)
  if (!header) return []
  return rows.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ''])))
}
