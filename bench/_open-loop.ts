/**
 * An open-loop load: requests leave at evenly spaced instants (`rate` a second), whether or not
 * earlier ones have been answered, and each latency is counted from the instant its request was
 * due — so a server that falls behind is charged for the queue it builds (no coordinated
 * omission), and the figure is the time a request takes at that arrival rate.
 *
 * autocannon's `overallRate` is not that: each connection sends its quota for the second at
 * the second's start, so 40 requests a second over 40 connections arrive together once a second
 * and the last of each burst waits for the 39 before it — its p99 measures the burst.
 */
import { loadavg } from 'node:os'
import type { LoadResult } from './_harness.js'

export async function openLoop(opts: {
  url: string
  method: string
  headers: Record<string, string>
  body?: () => unknown
  rate: number
  seconds: number
}): Promise<LoadResult> {
  const count = Math.max(1, Math.round(opts.rate * opts.seconds))
  const interval = 1000 / opts.rate
  const latencies: number[] = []
  const statuses: Record<string, number> = {}
  let errors = 0
  let ok = 0
  const sent: Array<Promise<void>> = []
  const started = performance.now()
  for (let i = 0; i < count; i++) {
    const due = started + i * interval
    const wait = due - performance.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    sent.push(
      fetch(opts.url, {
        method: opts.method,
        headers: opts.headers,
        ...(opts.body ? { body: JSON.stringify(opts.body()) } : {}),
      }).then(
        async (res) => {
          await res.arrayBuffer()
          latencies.push(performance.now() - due)
          statuses[res.status] = (statuses[res.status] ?? 0) + 1
          if (res.status >= 200 && res.status < 300) ok++
        },
        () => {
          errors++
        },
      ),
    )
  }
  await Promise.all(sent)
  const seconds = (performance.now() - started) / 1000
  latencies.sort((a, b) => a - b)
  const at = (q: number) =>
    Math.round(latencies[Math.min(latencies.length - 1, Math.ceil(latencies.length * q) - 1)] ?? 0)
  return {
    rps: ok / seconds,
    p50: at(0.5),
    p99: at(0.99),
    errors,
    non2xx: count - errors - ok,
    statuses,
    load: loadavg()[0]!,
  }
}
