/**
 * Forecast accuracy as Hyndman and Koehler (2006) define it, and a rolling-origin backtest:
 * the model is refitted at each origin on the data before it and judged on the `h` periods
 * after, so a reported error is one the method would really have made.
 */

/** Symmetric MAPE in percent: mean of 200·|F − A| / (|A| + |F|) (0 when both are 0). */
export function smape(actual: number[], forecast: number[]): number {
  const terms = actual.map((a, i) => {
    const f = forecast[i]!
    const d = Math.abs(a) + Math.abs(f)
    return d === 0 ? 0 : (200 * Math.abs(f - a)) / d
  })
  return terms.reduce((s, x) => s + x, 0) / terms.length
}

/** Mean absolute error of the in-sample seasonal naive forecast (lag m; m = 1: naive). */
export function naiveScale(train: number[], m = 1): number {
  let sum = 0
  let n = 0
  for (let t = m; t < train.length; t++) {
    sum += Math.abs(train[t]! - train[t - m]!)
    n++
  }
  return n ? sum / n : Number.NaN
}

/** MASE: mean absolute error scaled by the in-sample (seasonal) naive error. */
export function mase(actual: number[], forecast: number[], train: number[], m = 1): number {
  const mae = actual.reduce((s, a, i) => s + Math.abs(a - forecast[i]!), 0) / actual.length
  return mae / naiveScale(train, m)
}

export interface Backtest {
  origins: number
  horizon: number
  /** MASE over every origin's forecasts, scaled by the naive error of the whole training span. */
  mase: number
  smape: number
}

/**
 * Rolling origin: for each origin o from `minTrain` to `y.length − h`, fit on y[0, o) and
 * forecast y[o, o + h).
 */
export function rollingOrigin(
  y: number[],
  h: number,
  minTrain: number,
  forecast: (train: number[], h: number) => number[],
  m = 1,
): Backtest {
  const actual: number[] = []
  const predicted: number[] = []
  let origins = 0
  for (let o = minTrain; o + h <= y.length; o++) {
    const f = forecast(y.slice(0, o), h)
    actual.push(...y.slice(o, o + h))
    predicted.push(...f)
    origins++
  }
  if (!origins) return { origins: 0, horizon: h, mase: Number.NaN, smape: Number.NaN }
  return {
    origins,
    horizon: h,
    mase: mase(actual, predicted, y.slice(0, y.length - h), m),
    smape: smape(actual, predicted),
  }
}
