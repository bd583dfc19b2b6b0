// @ts-check
// Turns a stack captured inside an isolate into frames of the plugin's own source, in two
// steps. The worker keeps only the plugin's frames, in the bundle's own lines and columns
// (mapPluginStack): frames of the bootstrap are dropped (they are ours, not the plugin's);
// there are never host frames in an isolate stack, but nothing here assumes so: only "at ..."
// lines survive, so a stack that plugin code rewrote (Error.prepareStackTrace) cannot smuggle
// other text through. The parent, which holds the bundle's source map, maps those frames to the
// plugin's sources (mapToSources); only a map too long for the parent to parse cheaply travels
// to the worker, which then maps the frames itself.
import { SourceMap } from 'node:module'

/** @typedef {import('./worker-types.js').CompiledBundle} CompiledBundle */

export const BOOTSTRAP_FILENAME = 'trellis:sandbox-bootstrap'
const FRAME = /^at (?:(.*?) \()?(.*?):(\d+):(\d+)\)?$/
const MAX_FRAMES = 50
// A real frame is a function name and a bundle location; a longer line is plugin-written text,
// and FRAME backtracks quadratically on some shapes of it (on this process's event loop).
const MAX_FRAME_CHARS = 1024
/** The end of a frame in a bundle, after its name: line, column, and the parenthesis closing a named frame. */
const LOCATION = /^(\d{1,9}):(\d{1,9})(\)?)$/

/**
 * The name a bundle's code is compiled under, which its stack frames carry.
 * @param {string} key the bundle's key (id@version)
 */
export function bundleFilename(key) {
  return `bundle:${key}`
}

/**
 * @param {unknown} stack the stack text plugin code left on its error
 * @param {Pick<CompiledBundle, 'filename' | 'lineOffset' | 'sourceMap'>} bundle
 * @returns {string}
 */
export function mapPluginStack(stack, bundle) {
  if (typeof stack !== 'string' || stack === '') return ''
  /** @type {string[]} */
  const out = []
  for (const raw of stack.split('\n')) {
    const line = raw.trim()
    if (!line.startsWith('at ') || line.length > MAX_FRAME_CHARS || line.includes(BOOTSTRAP_FILENAME)) continue
    out.push(`    ${mapFrame(line, bundle)}`)
    if (out.length >= MAX_FRAMES) break
  }
  return out.join('\n')
}

/**
 * @param {string} line
 * @param {Pick<CompiledBundle, 'filename' | 'lineOffset' | 'sourceMap'>} bundle
 */
function mapFrame(line, bundle) {
  const m = FRAME.exec(line)
  if (!m || m[2] !== bundle.filename) return line
  const fn = m[1]
  // The bundle is compiled inside a one-line CommonJS wrapper, hence the line offset.
  const genLine = Number(m[3]) - bundle.lineOffset
  const genCol = Number(m[4])
  let where = `${bundle.filename}:${genLine}:${genCol}`
  const map = bundle.sourceMap()
  if (map) {
    const entry = map.findEntry(genLine - 1, genCol - 1)
    if (entry && 'originalSource' in entry && typeof entry.originalSource === 'string') {
      where = `${entry.originalSource}:${entry.originalLine + 1}:${entry.originalColumn + 1}`
    }
  }
  return fn ? `at ${fn} (${where})` : `at ${where}`
}

/**
 * Maps frames in a bundle's lines and columns (what mapPluginStack made) through its source
 * map; other lines stay as they are. It runs in the parent, on text plugin code may have shaped
 * (lines it wrote pass through the worker unchanged), so it reads only a frame's end — the
 * bundle's name, a line and a column — in time linear in the line, never FRAME.
 * @param {string} stack
 * @param {string} filename the bundle's (bundleFilename)
 * @param {SourceMap | null} map
 * @returns {string}
 */
export function mapToSources(stack, filename, map) {
  if (!map || stack === '') return stack
  const at = `${filename}:`
  return stack
    .split('\n')
    .map((line) => {
      const i = line.lastIndexOf(at)
      const m = i < 0 ? null : LOCATION.exec(line.slice(i + at.length))
      if (!m) return line
      const entry = map.findEntry(Number(m[1]) - 1, Number(m[2]) - 1)
      if (!entry || !('originalSource' in entry) || typeof entry.originalSource !== 'string') return line
      return `${line.slice(0, i)}${entry.originalSource}:${entry.originalLine + 1}:${entry.originalColumn + 1}${m[3]}`
    })
    .join('\n')
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
