/** The dimension values behind an anomalous period: each value's own series against its own baseline. */
import { seasonalBaseline, topContributors, type SeriesPoint } from './anomaly.js'

/** The top contributors to `period`, from one series per dimension value (see `seriesOf(answer, grain, by)`). */
export function contributorsAt(
  split: Map<string, SeriesPoint[]>,
  period: string,
  season: number,
  cycles: number,
  n = 3,
): ReturnType<typeof topContributors> {
  const current: Record<string, number> = {}
  const base: Record<string, number> = {}
  for (const [value, s] of split) {
    const at = s.findIndex((x) => x.period === period)
    if (at < 0) continue
    current[value] = s[at]!.value
    base[value] =
      seasonalBaseline(
        s.map((x) => x.value),
        at,
        season > 1 ? season : 0,
        cycles,
      ) ?? 0
  }
  return topContributors(current, base, n)
}
