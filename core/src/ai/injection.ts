/**
 * Prompt-injection screening of user input and retrieved text: phrases that try to override the
 * instructions, reveal them, or switch the model's role. A heuristic, stated as such: it logs
 * (or, where the tenant chose so, blocks) what it flags; it does not claim to catch everything.
 */
const PATTERNS: Array<[string, RegExp]> = [
  [
    'override',
    /\b(ignore|disregard|forget|override)\b[^.\n]{0,40}\b(previous|prior|above|earlier|all|your|the)\b[^.\n]{0,20}\b(instructions?|rules|prompts?|directions)\b/i,
  ],
  [
    'reveal',
    /\b(reveal|print|show|repeat|output)\b[^.\n]{0,30}\b(system prompt|hidden instructions|your instructions|initial prompt)\b/i,
  ],
  ['role', /\b(you are now|from now on you are|act as (?:an? )?(?:unrestricted|jailbroken|dan)\b|developer mode)/i],
  ['markup', /<\/?\s*(system|assistant|im_start|im_end)\s*>|\[\/?INST\]/i],
]

export interface InjectionVerdict {
  flagged: boolean
  /** Which rules matched, and where (`user`, `passage`). */
  hits: Array<{ rule: string; where: 'user' | 'passage' }>
}

export function screen(userTexts: readonly string[], passages: readonly string[]): InjectionVerdict {
  const hits: InjectionVerdict['hits'] = []
  for (const [where, texts] of [
    ['user', userTexts],
    ['passage', passages],
  ] as const)
    for (const text of texts)
      for (const [rule, re] of PATTERNS)
        if (re.test(text) && !hits.some((h) => h.rule === rule && h.where === where)) hits.push({ rule, where })
  return { flagged: hits.length > 0, hits }
}
