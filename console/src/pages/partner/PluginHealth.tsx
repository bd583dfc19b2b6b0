import { useQuery } from '@tanstack/react-query'
import { useState } from 'react'
import { api, call } from '../../api/client'
import { t } from '../../i18n'
import { usePublishedVersions } from './PublishedVersions'

const WINDOWS = [24, 24 * 7, 24 * 30] as const
const ms = (n: number) => t('health.ms', { n: n.toFixed(1) })

/**
 * The publisher's plugins' health across the tenants that run them, per version over a window:
 * invocations, errors, latency (p50, p95) and CPU — aggregates only, never a tenant's data.
 */
export function PluginHealth() {
  // The plugins are those the publisher has versions of.
  const versions = usePublishedVersions()
  const plugins = [...new Set((versions.data?.items ?? []).map((v) => v.name))].sort()
  const [chosen, setChosen] = useState<string>()
  const [hours, setHours] = useState<number>(24)
  const plugin = chosen ?? plugins[0]
  const [scope, name] = (plugin ?? '/').split('/') as [string, string]
  const health = useQuery({
    queryKey: ['plugin-health', plugin, hours],
    enabled: !!plugin,
    queryFn: () =>
      call(() => api.GET('/v1/plugins/{scope}/{name}/health', { params: { path: { scope, name }, query: { hours } } })),
  })
  const rows = health.data?.versions ?? []
  return (
    <section aria-labelledby="health-title">
      <h2 id="health-title">{t('health.title')}</h2>
      <p className="muted">{t('health.intro')}</p>
      {plugins.length === 0 ? (
        <p>{t('pub.noVersions')}</p>
      ) : (
        <div className="toolbar">
          <div>
            <label htmlFor="health-plugin">{t('pub.plugin')}</label>
            <select id="health-plugin" value={plugin} onChange={(e) => setChosen(e.currentTarget.value)}>
              {plugins.map((p) => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label htmlFor="health-window">{t('health.window')}</label>
            <select id="health-window" value={hours} onChange={(e) => setHours(Number(e.currentTarget.value))}>
              {WINDOWS.map((h) => (
                <option key={h} value={h}>
                  {t(h === 24 ? 'health.day' : 'health.days', { n: h / 24 })}
                </option>
              ))}
            </select>
          </div>
        </div>
      )}
      {health.error && <p className="error">{t('app.error', { message: health.error.message })}</p>}
      {health.data && rows.length === 0 && <p role="status">{t('health.none')}</p>}
      {rows.length > 0 && (
        <table data-testid="plugin-health">
          <thead>
            <tr>
              <th scope="col">{t('pub.version')}</th>
              <th scope="col">{t('health.invocations')}</th>
              <th scope="col">{t('health.errors')}</th>
              <th scope="col">{t('health.p50')}</th>
              <th scope="col">{t('health.p95')}</th>
              <th scope="col">{t('health.cpu')}</th>
              <th scope="col">{t('health.tenants')}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.version}>
                <td>{r.version}</td>
                <td>{r.invocations}</td>
                <td>
                  {t('health.errorRate', {
                    n: r.errors,
                    rate: ((100 * r.errors) / Math.max(r.invocations, 1)).toFixed(1),
                  })}
                </td>
                <td>{ms(r.wallMsP50)}</td>
                <td>{ms(r.wallMsP95)}</td>
                <td>{ms(r.cpuMsAvg)}</td>
                <td>{r.tenants}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  )
}
