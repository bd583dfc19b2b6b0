import { splitSentences } from '../ai/local/extractive-answerer.js'

/**
 * Sentences in a document that address a model instead of a reader: "ignore the previous
 * instructions", "reveal your system prompt", role switches, chat markup. A heuristic: such
 * sentences are flagged at ingestion and left out of the passages a model is given; the rest
 * of the passage still counts.
 */
const ADDRESSED_TO_A_MODEL = [
  /\b(ignore|disregard|forget|override)\b[^.\n]{0,40}\b(previous|prior|above|earlier|all|your|the)\b[^.\n]{0,20}\b(instructions?|rules|prompts?|directions)\b/i,
  /\b(reveal|print|show|repeat|output)\b[^.\n]{0,30}\b(system prompt|hidden instructions|your instructions|initial prompt)\b/i,
  /\b(you are now|from now on you are|developer mode)\b/i,
  /<\/?\s*(system|assistant|im_start|im_end)\s*>|\[\/?INST\]/i,
]

export function addressesAModel(text: string): boolean {
  return ADDRESSED_TO_A_MODEL.some((re) => re.test(text))
}

/** The passage without its sentences that address a model. */
export function neutralised(text: string): string {
  return splitSentences(text)
    .filter((s) => !addressesAModel(s))
    .join(' ')
}
