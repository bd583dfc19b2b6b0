import type { PluginManifest } from '@trellis/plugin-sdk'

type Prompts = NonNullable<PluginManifest['prompts']>

/** One template as the reviewer reads it. */
export interface PromptView {
  name: string
  system: string | null
  template: string
}

/** The prompt templates of a version against the previous approved one: what the reviewer must read. */
export interface PromptDiff {
  added: PromptView[]
  removed: string[]
  changed: Array<{ name: string; before: PromptView; after: PromptView }>
}

const view = (name: string, p: Prompts[string]): PromptView => ({
  name,
  system: p.system ?? null,
  template: p.template,
})

export function promptDiff(
  next: Pick<PluginManifest, 'prompts'>,
  prev: Pick<PluginManifest, 'prompts'> | undefined,
): PromptDiff {
  const now = next.prompts ?? {}
  const before = prev?.prompts ?? {}
  const out: PromptDiff = { added: [], removed: [], changed: [] }
  for (const name of Object.keys(now).sort()) {
    const a = view(name, now[name]!)
    if (!Object.hasOwn(before, name)) out.added.push(a)
    else {
      const b = view(name, before[name]!)
      if (a.system !== b.system || a.template !== b.template) out.changed.push({ name, before: b, after: a })
    }
  }
  for (const name of Object.keys(before).sort()) if (!Object.hasOwn(now, name)) out.removed.push(name)
  return out
}
