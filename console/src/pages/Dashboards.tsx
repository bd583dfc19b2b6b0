import { useQuery } from '@tanstack/react-query'
import { lazy, Suspense } from 'react'
import { api, call, pluginCall } from '../api/client'
import { t } from '../i18n'

const SeriesChart = lazy(() => import('../components/SeriesChart'))

type Panel = {
  kind: string
  title: string
  metric: string
  grain?: string
  window?: string
  groupBy?: string[]
  limit?: number
  compare?: string
}
type Answer = {
  unit: string | null
  groupBy: string[]
  rows: Array<{ period?: string; dims: Record<string, string | null>; value: number | string | null }>
}

/** `P12M` → the first day it covers (today included), as YYYY-MM-DD; `yearsBack` shifts it. */
export function windowStart(window: string | undefined, today: Date, yearsBack = 0): string | undefined {
  const m = /^P(\d+)([DWMY])$/.exec(window ?? '')
  if (!m) return undefined
  const n = Number(m[1])
  const d = new Date(Date.UTC(today.getUTCFullYear() - yearsBack, today.getUTCMonth(), today.getUTCDate()))
  if (m[2] === 'D') d.setUTCDate(d.getUTCDate() - n)
  if (m[2] === 'W') d.setUTCDate(d.getUTCDate() - 7 * n)
  if (m[2] === 'M') d.setUTCMonth(d.getUTCMonth() - n)
  if (m[2] === 'Y') d.setUTCFullYear(d.getUTCFullYear() - n)
  return d.toISOString().slice(0, 10)
}

const day = (d: Date, yearsBack = 0) =>
  new Date(Date.UTC(d.getUTCFullYear() - yearsBack, d.getUTCMonth(), d.getUTCDate() + 1)).toISOString().slice(0, 10)

function metricUrl(panel: Panel, yearsBack = 0): string {
  const today = new Date()
  const q = new URLSearchParams()
  const from = windowStart(panel.window, today, yearsBack)
  if (from) q.set('from', from)
  q.set('to', day(today, yearsBack))
  if (panel.kind === 'series' && panel.grain) q.set('grain', panel.grain)
  if (panel.kind === 'table' && panel.groupBy?.length) q.set('groupBy', panel.groupBy.join(','))
  if (panel.limit) q.set('limit', String(panel.limit))
  return `/v1/metrics/${encodeURIComponent(panel.metric)}?${q}`
}

/** The installed plugins' dashboards (GET /v1/dashboards): numbers, series charted with uPlot, tables. */
export default function Dashboards() {
  const boards = useQuery({ queryKey: ['dashboards'], queryFn: () => call(() => api.GET('/v1/dashboards')) })
  return (
    <section aria-labelledby="dashboards-title">
      <h1 id="dashboards-title">{t('dash.title')}</h1>
      {boards.error && <p className="error">{t('app.error', { message: boards.error.message })}</p>}
      {boards.data?.items.length === 0 && <p>{t('common.none')}</p>}
      {boards.data?.items.map((b) => (
        <section key={b.name} aria-labelledby={`dash-${b.name}`} className="dashboard">
          <h2 id={`dash-${b.name}`}>{b.title}</h2>
          {b.description && <p className="muted">{b.description}</p>}
          <div className="panels">
            {(b.panels as Panel[]).map((p) => (
              <PanelView key={`${p.metric}-${p.title}`} panel={p} />
            ))}
          </div>
          {b.hiddenPanels > 0 && <p className="muted">{t('dash.hidden', { n: b.hiddenPanels })}</p>}
        </section>
      ))}
    </section>
  )
}

function PanelView({ panel }: { panel: Panel }) {
  const answer = useQuery({
    queryKey: ['metric', metricUrl(panel)],
    queryFn: () => pluginCall<Answer>('GET', metricUrl(panel)),
  })
  const before = useQuery({
    queryKey: ['metric', metricUrl(panel, 1)],
    enabled: panel.kind === 'number' && panel.compare === 'year',
    queryFn: () => pluginCall<Answer>('GET', metricUrl(panel, 1)),
  })
  const rows = answer.data?.rows ?? []
  return (
    <figure className="panel" aria-labelledby={`panel-${panel.metric}-${panel.title}`}>
      <figcaption id={`panel-${panel.metric}-${panel.title}`}>{panel.title}</figcaption>
      {answer.error && <p className="error">{t('app.error', { message: answer.error.message })}</p>}
      {answer.data && panel.kind === 'number' && (
        <p className="big" data-testid="panel-number">
          {String(rows[0]?.value ?? 0)}
          {before.data && (
            <span className="muted"> {t('dash.yearBefore', { value: String(before.data.rows[0]?.value ?? 0) })}</span>
          )}
        </p>
      )}
      {answer.data && panel.kind === 'series' && (
        <Suspense fallback={<p role="status">{t('app.loading')}</p>}>
          <SeriesChart
            title={panel.title}
            points={rows.filter((r) => r.period).map((r) => ({ period: r.period!, value: Number(r.value ?? 0) }))}
          />
        </Suspense>
      )}
      {answer.data && panel.kind === 'table' && (
        <table>
          <thead>
            <tr>
              {answer.data.groupBy.map((g) => (
                <th key={g} scope="col">
                  {g}
                </th>
              ))}
              <th scope="col">{t('dash.value')}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={JSON.stringify(r.dims)}>
                {answer.data.groupBy.map((g) => (
                  <td key={g}>{r.dims[g] ?? '—'}</td>
                ))}
                <td>{String(r.value ?? '')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </figure>
  )
}
