import t from 'tap'
import { Histogram, Registry } from 'prom-client'
import { BoundHistogram } from '../src/observability/bound-histogram.js'

t.test('exposes exactly what a prom-client histogram would for the same observations', async (t) => {
  const buckets = [0.005, 0.01, 0.1, 1]
  const theirs = new Registry()
  const ours = new Registry()
  const reference = new Histogram({
    name: 'h_seconds',
    help: 'help text',
    labelNames: ['method', 'route'],
    buckets,
    registers: [theirs],
  })
  const bound = new BoundHistogram('h_seconds', 'help text', buckets)
  ours.registerMetric(bound.asMetric())
  const observations: Array<[string, string, number]> = [
    ['GET', '/a', 0.001],
    ['GET', '/a', 0.005],
    ['GET', '/a', 0.0051],
    ['GET', '/a', 2],
    ['POST', '/b', 0.5],
    ['POST', '/b', 0.01],
    ['GET', '/a', 0.2],
  ]
  for (const [method, route, v] of observations) {
    reference.observe({ method, route }, v)
    bound.series(`${method} ${route}`, () => ({ method, route })).observe(v)
  }
  t.equal(await ours.metrics(), await theirs.metrics())
  t.match(await ours.metrics(), /h_seconds_bucket\{le="0.005",method="GET",route="\/a"\} 2/)
  ours.resetMetrics()
  t.equal(await ours.metrics(), '# HELP h_seconds help text\n# TYPE h_seconds histogram\n')
})
