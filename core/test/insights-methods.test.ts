// The time-series methods behind anomalies, drift and forecasts, on series of known structure
// (a season, a planted spike, a planted level shift, an intermittent series) and on a published
// worked example (NIST/SEMATECH e-Handbook 6.3.2.4, EWMA). Each test fails when the method is wrong.
import t from 'tap'
import {
  croston,
  detectAnomalies,
  ewmaChart,
  fitHoltWinters,
  forecastHoltWinters,
  isIntermittent,
  lateProbability,
  mase,
  rollingOrigin,
  smape,
  stockOutRisk,
  topContributors,
} from '../src/insights/index.js'

/** A deterministic PRNG (mulberry32) and a roughly normal draw from it. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}
const noise = (r: () => number) => r() + r() + r() + r() - 2
const SEASON = [80, 85, 100, 110, 120, 140, 150, 145, 120, 105, 95, 160]
const month = (i: number) => `${2020 + Math.floor(i / 12)}-${String((i % 12) + 1).padStart(2, '0')}-01`
function seasonal(n: number, seed: number, trend = 0) {
  const r = rng(seed)
  return Array.from({ length: n }, (_, i) => SEASON[i % 12]! + trend * i + 3 * noise(r))
}

t.test('EWMA reproduces the NIST e-Handbook example (6.3.2.4)', async (t) => {
  const data = [
    52.0, 47.0, 53.0, 49.3, 50.1, 47.0, 51.0, 50.1, 51.2, 50.5, 49.6, 47.6, 49.9, 51.3, 47.8, 51.2, 52.6, 52.4, 53.6,
    52.1,
  ]
  const chart = ewmaChart(data, { lambda: 0.3, L: 3, target: 50, sigma: 2.0539, exact: false })
  const ewma = [
    50.6, 49.52, 50.56, 50.18, 50.16, 49.21, 49.75, 49.85, 50.26, 50.33, 50.11, 49.36, 49.52, 50.05, 49.38, 49.92,
    50.73, 51.23, 51.94, 51.99,
  ]
  t.same(
    chart.points.map((p) => Math.round(p.ewma * 100) / 100),
    ewma,
  )
  t.equal(Math.round(chart.points[0]!.upper * 10000) / 10000, 52.5884, 'UCL = 50 + 3(0.4201)(2.0539)')
  t.equal(Math.round(chart.points[0]!.lower * 10000) / 10000, 47.4116)
  t.ok(
    chart.points.every((p) => p.signal === null),
    'the process is in control, as the handbook concludes',
  )
})

t.test('EWMA catches a planted level shift that single-period scores miss', async (t) => {
  const r = rng(7)
  const ratio = Array.from({ length: 60 }, (_, i) => (i < 30 ? 0.95 : 0.93) + 0.01 * noise(r))
  const chart = ewmaChart(ratio, { lambda: 0.2, baseline: 20 })
  const first = chart.points.findIndex((p) => p.signal !== null)
  t.ok(first >= 30 && first < 42, `signals after the shift (at ${first})`)
  t.equal(chart.points[first]!.signal, 'down')
  const scored = detectAnomalies(
    ratio.map((value, i) => ({ period: month(i), value })),
    { season: 0 },
  )
  t.ok(scored.filter((p) => p.anomalous).length <= 2, 'a 2-point drop is hardly an outlier period by period')
})

t.test('seasonal baseline + MAD: a planted spike, and nothing at the seasonal peaks', async (t) => {
  const values = seasonal(48, 1)
  values[40] = values[40]! * 1.6
  const series = values.map((value, i) => ({ period: month(i), value }))
  const scored = detectAnomalies(series, { season: 12 })
  const flagged = scored.filter((p) => p.anomalous).map((p) => p.period)
  t.same(flagged, [month(40)], 'only the spike')
  const spike = scored[40]!
  t.ok(
    spike.baseline! > 110 && spike.baseline! < 130,
    `baseline is the median of the same month before (${spike.baseline})`,
  )
  t.ok(spike.score! > 3.5)
  // Without the season, the yearly peaks look like anomalies: the seasonal baseline is what prevents it.
  const naive = detectAnomalies(
    values.map((value, i) => ({ period: month(i), value })),
    { season: 0, cycles: 3 },
  )
  t.notSame(
    naive.filter((p) => p.anomalous).map((p) => p.period),
    [month(40)],
    'a baseline without the season loses the spike in the seasonal swings',
  )
})

t.test('an incomplete current period is never compared as complete; quiet series do not alarm', async (t) => {
  const values = seasonal(37, 2)
  const series = values.map((value, i) => ({ period: month(i), value, complete: i < 36 }))
  series[36]!.value = values[36]! * 0.2 // a month that has only begun
  const scored = detectAnomalies(series, { season: 12 })
  t.equal(scored[36]!.anomalous, false)
  t.equal(scored[36]!.skipped, 'incomplete')
  t.equal(scored[36]!.score, null)
  const quiet = Array.from({ length: 30 }, (_, i) => ({ period: month(i), value: i === 25 ? 4 : i % 3 === 0 ? 1 : 0 }))
  t.equal(detectAnomalies(quiet, { season: 0, minVolume: 10 }).filter((p) => p.anomalous).length, 0)
  t.ok(
    detectAnomalies(quiet, { season: 0 }).some((p) => p.anomalous),
    'without the minimum it would alarm',
  )
})

t.test('top contributors: the dimension values that moved most', async (t) => {
  const top = topContributors({ DE: 100, FR: 40, ES: 10 }, { DE: 60, FR: 45, ES: 10, IT: 5 }, 2)
  t.same(
    top.map((c) => [c.value, c.change]),
    [
      ['DE', 40],
      ['FR', -5],
    ],
  )
})

t.test('Holt-Winters forecasts a trended seasonal series; the backtest reports MASE and sMAPE', async (t) => {
  const y = seasonal(60, 3, 1.5)
  const fit = fitHoltWinters(y, 12)
  const f = forecastHoltWinters(fit, 12)
  const truth = Array.from({ length: 12 }, (_, i) => SEASON[(60 + i) % 12]! + 1.5 * (60 + i))
  t.ok(smape(truth, f) < 4, `sMAPE against the noiseless continuation ${smape(truth, f).toFixed(2)} %`)
  t.equal(f.indexOf(Math.max(...f)), 11, 'the December peak is forecast in December')
  const hw = rollingOrigin(y, 6, 36, (train, h) => forecastHoltWinters(fitHoltWinters(train, 12), h), 12)
  const flat = rollingOrigin(y, 6, 36, (train, h) => Array(h).fill(train.reduce((s, x) => s + x, 0) / train.length), 12)
  t.equal(hw.origins, 19)
  t.ok(hw.mase < 1, `beats the seasonal naive method (MASE ${hw.mase.toFixed(2)})`)
  t.ok(hw.mase < flat.mase / 3, 'far better than a flat mean')
  t.ok(fit.alpha > 0 && fit.gamma > 0, 'parameters reported')
})

t.test('Croston and SBA on an intermittent series', async (t) => {
  const y = Array.from({ length: 36 }, (_, i) => (i % 3 === 2 ? 6 : 0))
  t.ok(isIntermittent(y))
  t.notOk(isIntermittent(seasonal(24, 4)))
  const c = croston(y, { alpha: 0.1 })
  t.equal(c.size, 6)
  t.equal(c.interval, 3)
  t.equal(c.forecast, 2, 'size / interval: 6 every 3 periods is 2 a period')
  t.equal(croston(y, { alpha: 0.1, sba: true }).forecast, 1.9, 'SBA: × (1 − α/2)')
  const lumpy = [0, 0, 4, 0, 0, 0, 8, 0, 2, 0, 0, 6]
  const d = croston(lumpy, { alpha: 0.5 })
  // z: 4 → 0.5·8 + 0.5·4 = 6 → 0.5·2 + 0.5·6 = 4 → 0.5·6 + 0.5·4 = 5; p: 3 → 3.5 → 2.75 → 2.875
  t.equal(d.size, 5)
  t.equal(d.interval, 2.875)
  t.equal(croston([0, 0, 0]).forecast, 0)
})

t.test('MASE and sMAPE as Hyndman and Koehler define them', async (t) => {
  t.ok(Math.abs(smape([100, 200], [110, 180]) - (200 * (10 / 210) + 200 * (20 / 380)) / 2) < 1e-12)
  // naive in-sample MAE of [1, 3, 2, 5] is (2 + 1 + 3) / 3 = 2; forecast MAE is 1
  t.equal(mase([6, 7], [5, 8], [1, 3, 2, 5]), 0.5)
  const perfect = rollingOrigin([1, 2, 3, 4, 5, 6], 1, 3, (train) => [train[train.length - 1]! + 1])
  t.same(perfect, { origins: 3, horizon: 1, mase: 0, smape: 0 })
})

t.test('stock-out risk over the lead time and late onboardings', async (t) => {
  t.equal(stockOutRisk(50, 10, 3, 5), 0.5, 'stock equal to the expected demand: one chance in two')
  const safe = 50 + 1.645 * 3 * Math.sqrt(5)
  t.ok(Math.abs(stockOutRisk(safe, 10, 3, 5) - 0.05) < 0.005, 'the 95 % service level stock')
  t.equal(stockOutRisk(10, 2, 0, 4), 0)
  const durations = [10, 12, 15, 20, 25, 30, 40, 60]
  t.equal(lateProbability(durations, 18, 30), 2 / 5, 'of the 5 that lasted past day 18, 2 went past day 30')
  t.equal(lateProbability(durations, 70, 80), null)
})
