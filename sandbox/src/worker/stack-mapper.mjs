// @ts-check
// Turns a stack captured inside an isolate into frames of the plugin's own source, in two
// steps. The worker keeps only the plugin's frames, in the bundle's own lines and columns
// (mapPluginStack): frames of the bootstrap are dropped (they are ours, not the plugin's);
// there are never host frames in an isolate stack, but nothing here assumes so: only "at ..."
// lines survive, so a stack that plugin code rewrote (Error.prepareStackTrace) cannot smuggle
// other text through. The parent, which holds the bundle's source map (it never travels to a
// worker), maps those frames to the plugin's sources (mapToSources).
import { SourceMap } from 'node:module'

/** @typedef {import('./worker-types.js').CompiledBundle} CompiledBundle */

export const BOOTSTRAP_FILENAME = 'trellis:sandbox-bootstrap'
const FRAME = /^at (?:(.*?) \()?(.*?):(\d+):(\d+)\)?$/
const MAX_FRAMES = 50
// A real frame is a function name and a bundle location; a longer line is plugin-written text,
// and FRAME backtracks quadratically on some shapes of it (on this process's event loop).
const MAX_FRAME_CHARS = 1024

/**
 * The name a bundle's code is compiled under, which its stack frames carry.
 * @param {string} key the bundle's key (id@version)
 */
export function bundleFilename(key) {
  return `bundle:${key}`
}

/**
 * @param {unknown} stack the stack text plugin code left on its error
 * @param {Pick<CompiledBundle, 'filename' | 'lineOffset'>} bundle
 * @returns {string}
 */
export function mapPluginStack(stack, bundle) {
  return rewriteFrames(stack, BOOTSTRAP_FILENAME, (fn, file, line, col) =>
    // The bundle is compiled inside a one-line CommonJS wrapper, hence the line offset.
    file === bundle.filename ? frame(fn, `${file}:${line - bundle.lineOffset}:${col}`) : undefined,
  )
}

/**
 * Maps frames in a bundle's lines and columns (what mapPluginStack made) through its source
 * map; frames the map does not cover stay as they are.
 * @param {string} stack
 * @param {string} filename the bundle's (bundleFilename)
 * @param {SourceMap | null} map
 * @returns {string}
 */
export function mapToSources(stack, filename, map) {
  if (!map || stack === '') return stack
  return rewriteFrames(stack, undefined, (fn, file, line, col) => {
    if (file !== filename) return undefined
    const entry = map.findEntry(line - 1, col - 1)
    if (!entry || !('originalSource' in entry) || typeof entry.originalSource !== 'string') return undefined
    return frame(fn, `${entry.originalSource}:${entry.originalLine + 1}:${entry.originalColumn + 1}`)
  })
}

/**
 * Keeps the "at ..." lines of `stack` (at most MAX_FRAMES, none mentioning `drop`), each
 * rewritten by `rewrite` when it parses as a frame and `rewrite` answers.
 * @param {unknown} stack
 * @param {string | undefined} drop
 * @param {(fn: string | undefined, file: string, line: number, col: number) => string | undefined} rewrite
 */
function rewriteFrames(stack, drop, rewrite) {
  if (typeof stack !== 'string' || stack === '') return ''
  /** @type {string[]} */
  const out = []
  for (const raw of stack.split('\n')) {
    const line = raw.trim()
    if (!line.startsWith('at ') || line.length > MAX_FRAME_CHARS || (drop && line.includes(drop))) continue
    const m = FRAME.exec(line)
    out.push(`    ${(m && rewrite(m[1], m[2] ?? '', Number(m[3]), Number(m[4]))) ?? line}`)
    if (out.length >= MAX_FRAMES) break
  }
  return out.join('\n')
}

/**
 * @param {string | undefined} fn
 * @param {string} where
 */
function frame(fn, where) {
  return fn ? `at ${fn} (${where})` : `at ${where}`
}

/**
 * Parses a source map lazily; a broken map only costs the mapping, never the invocation.
 * @param {unknown} text
 * @returns {() => SourceMap | null}
 */
export function lazySourceMap(text) {
  if (typeof text !== 'string' || text === '') return () => null
  /** @type {SourceMap | null | undefined} */
  let map
  return () => {
    if (map === undefined) {
      try {
        map = new SourceMap(JSON.parse(text))
      } catch {
        map = null
      }
    }
    return map
  }
}
