import type { Metric } from 'prom-client'

/** One label set's buckets: observing is a bucket search and three additions. */
export class HistogramSeries {
  readonly counts: Float64Array
  sum = 0
  count = 0

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length)
  }

  observe(value: number): void {
    const b = this.bounds
    let i = 0
    while (i < b.length && value > b[i]!) i++
    if (i < b.length) this.counts[i]!++
    this.sum += value
    this.count++
  }
}

/**
 * A Prometheus histogram for the request path, exposed through a prom-client registry like
 * any other metric. prom-client hashes the label values on every observation; here a caller
 * keeps the series for its label set and observes into it directly.
 */
export class BoundHistogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  private readonly all = new Map<string, HistogramSeries>()

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {}

  /** The series of one label set, made on first use; `key` identifies the set. */
  series(key: string, labels: () => Record<string, string>): HistogramSeries {
    let s = this.all.get(key)
    if (!s) this.all.set(key, (s = new HistogramSeries(labels(), this.bounds)))
    return s
  }

  /** What prom-client's registry reads when scraped (its histogram's shape). */
  async get() {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = []
    for (const s of this.all.values()) {
      let cumulative = 0
      this.bounds.forEach((le, i) => {
        cumulative += s.counts[i]!
        values.push({ labels: { le, ...s.labels }, value: cumulative, metricName: `${this.name}_bucket` })
      })
      values.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: `${this.name}_bucket` })
      values.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` })
      values.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }

  reset(): void {
    this.all.clear()
  }

  /** For `Registry.registerMetric`, whose type names prom-client's own classes. */
  asMetric(): Metric {
    return this as unknown as Metric
  }
}
