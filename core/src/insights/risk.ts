/**
 * Stock-out risk and late onboardings: probabilities a person can act on.
 */
import { cumulativeStdNormalProbability } from 'simple-statistics'

/**
 * The probability that demand over the supplier lead time exceeds the available stock, with
 * per-period demand of mean `mean` and standard deviation `sd`, independent across the
 * `leadTime` periods (normal approximation: mean·L, sd·√L).
 */
export function stockOutRisk(available: number, mean: number, sd: number, leadTime: number): number {
  const mu = mean * leadTime
  const sigma = sd * Math.sqrt(leadTime)
  if (sigma === 0) return mu > available ? 1 : 0
  return 1 - cumulativeStdNormalProbability((available - mu) / sigma)
}

/**
 * The probability that an onboarding still open after `elapsed` days goes live after `due`
 * days, from the durations of completed ones: P(T > max(due, elapsed) | T > elapsed). `null`
 * when no completed onboarding lasted longer than `elapsed` (no evidence either way).
 */
export function lateProbability(completed: number[], elapsed: number, due: number): number | null {
  const survivors = completed.filter((d) => d > elapsed)
  if (!survivors.length) return null
  return survivors.filter((d) => d > Math.max(due, elapsed)).length / survivors.length
}
