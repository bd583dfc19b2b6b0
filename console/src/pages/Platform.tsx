import { useQuery } from '@tanstack/react-query'
import { api, call } from '../api/client'
import { can, useAuth } from '../auth'
import { type OrgApi, Organisations } from '../components/Organisations'
import { t } from '../i18n'

const partners: OrgApi = {
  kind: 'partners',
  list: () => call(() => api.GET('/v1/partners', { params: { query: { limit: 100 } } })),
  create: (body) => call(() => api.POST('/v1/partners', { body })),
  setStatus: (id, action) =>
    call(() =>
      action === 'suspend'
        ? api.POST('/v1/partners/{id}/suspend', { params: { path: { id } } })
        : api.POST('/v1/partners/{id}/resume', { params: { path: { id } } }),
    ),
}

/** The process figures the health panel reads from the Prometheus exposition at /metrics. */
const FIGURES = {
  trellis_process_start_time_seconds: 'system.uptime',
  trellis_process_resident_memory_bytes: 'system.memory',
  trellis_nodejs_eventloop_lag_p99_seconds: 'system.lag',
} as const

/** `name value` lines of a Prometheus text exposition (samples without labels). */
export function samples(text: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*) ([-+0-9.eE]+|NaN)$/.exec(line.trim())
    if (m) out[m[1]!] = Number(m[2])
  }
  return out
}

async function health() {
  const ready = await fetch('/readyz')
  const body = (await ready.json().catch(() => ({}))) as { status?: string; code?: string; detail?: string }
  const metrics = samples(await (await fetch('/metrics')).text())
  return {
    ready: ready.ok,
    problem: ready.ok ? undefined : `${body.code ?? ready.status}: ${body.detail ?? ''}`,
    metrics,
  }
}

/** The platform admin's partners (create, suspend, resume) and the system's health. */
export default function Platform() {
  const { me } = useAuth()
  const h = useQuery({ queryKey: ['health'], queryFn: health, refetchInterval: 15_000 })
  const m = h.data?.metrics ?? {}
  const value = (name: keyof typeof FIGURES): string => {
    const v = m[name]
    if (v === undefined || Number.isNaN(v)) return '—'
    if (name === 'trellis_process_start_time_seconds')
      return t('system.minutes', { n: Math.max(0, Math.round((Date.now() / 1000 - v) / 60)) })
    if (name === 'trellis_process_resident_memory_bytes') return `${Math.round(v / 1_048_576)} MiB`
    return `${(v * 1000).toFixed(1)} ms`
  }
  return (
    <>
      <section aria-labelledby="system-title">
        <h1 id="system-title">{t('system.title')}</h1>
        {h.error && <p className="error">{t('app.error', { message: h.error.message })}</p>}
        {h.data && (
          <p className={h.data.ready ? 'status' : 'error'} data-testid="readiness">
            {h.data.ready ? t('system.ready') : t('system.notReady', { problem: h.data.problem ?? '' })}
          </p>
        )}
        <dl className="fields">
          {(Object.keys(FIGURES) as Array<keyof typeof FIGURES>).map((name) => (
            <div key={name}>
              <dt>{t(FIGURES[name])}</dt>
              <dd>{value(name)}</dd>
            </div>
          ))}
        </dl>
      </section>
      <section aria-labelledby="partners-title">
        <h2 id="partners-title">{t('partners.title')}</h2>
        <Organisations orgs={partners} manage={can(me, 'partners.manage')} />
      </section>
    </>
  )
}
