/**
 * Prompt templates a plugin declares in its manifest (`prompts`): the text the model gets is
 * the reviewed template; user input only fills its declared `{{slot}}`s. The kernel and the
 * in-memory test host render them the same way, with this function.
 */
import { TrellisError } from './errors.js'
import type { PluginManifest } from './manifest-types.js'

/** A declared prompt template. */
export interface ManifestPrompt {
  /** What the prompt is for (shown in the marketplace review). */
  description?: string
  /** A system message sent before the template. */
  system?: string
  /** The user message, with `{{slot}}` placeholders (letters, digits, `_`). */
  template: string
}

const SLOT = /\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}/g

/** The slot names a template declares, in order of first use. */
export function promptSlots(template: string): string[] {
  return [...new Set([...template.matchAll(SLOT)].map((m) => m[1]!))]
}

/** The messages of prompt `name` with `slots` filled (one pass: a value is never expanded again). */
export function renderPrompt(
  manifest: Pick<PluginManifest, 'name'> & { prompts?: Record<string, ManifestPrompt> },
  name: string,
  slots: Record<string, string>,
): Array<{ role: 'system' | 'user'; content: string }> {
  const p = manifest.prompts && Object.hasOwn(manifest.prompts, name) ? manifest.prompts[name] : undefined
  if (!p)
    throw new TrellisError(
      'AI_ERR_TEMPLATE_UNKNOWN',
      400,
      'Unknown prompt template',
      `prompt template "${name}" is not declared in the plugin's manifest`,
    )
  const declared = new Set(promptSlots(p.template))
  for (const slot of Object.keys(slots))
    if (!declared.has(slot))
      throw new TrellisError(
        'AI_ERR_SLOT_UNDECLARED',
        400,
        'Prompt slot not declared',
        `prompt template "${name}" declares no slot "${slot}"`,
      )
  const content = p.template.replace(SLOT, (_m, slot: string) => (Object.hasOwn(slots, slot) ? slots[slot]! : ''))
  return [...(p.system ? [{ role: 'system' as const, content: p.system }] : []), { role: 'user' as const, content }]
}
