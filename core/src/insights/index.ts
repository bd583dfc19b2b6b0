/** Anomaly detection, drift, forecasts and their accuracy over metric series. */
export {
  detectAnomalies,
  seasonalBaseline,
  topContributors,
  MAD_SCALE,
  type AnomalyOptions,
  type ScoredPoint,
  type SeriesPoint,
} from './anomaly.js'
export { ewmaChart, type EwmaOptions, type EwmaPoint } from './drift.js'
export { fitHoltWinters, forecastHoltWinters, type HoltWintersFit, type HoltWintersParams } from './holt-winters.js'
export { croston, isIntermittent, type CrostonFit } from './croston.js'
export { mase, naiveScale, rollingOrigin, smape, type Backtest } from './accuracy.js'
export { lateProbability, stockOutRisk } from './risk.js'
