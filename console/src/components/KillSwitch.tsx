import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useState } from 'react'
import { api, call } from '../api/client'
import { t } from '../i18n'

/** The platform admin's kill switch: block a listed version everywhere (with a reason), or unblock it. */
export function KillSwitch() {
  const client = useQueryClient()
  const [plugin, setPlugin] = useState('')
  const [reason, setReason] = useState('')
  const [notice, setNotice] = useState<string>()
  const plugins = useQuery({
    queryKey: ['plugins'],
    queryFn: () => call(() => api.GET('/v1/marketplace/plugins', { params: { query: { limit: 100 } } })),
  })
  const [scope = '', name = ''] = plugin.split('/')
  const detail = useQuery({
    queryKey: ['plugin', scope, name],
    enabled: !!plugin,
    queryFn: () => call(() => api.GET('/v1/marketplace/plugins/{scope}/{name}', { params: { path: { scope, name } } })),
  })
  const act = useMutation({
    mutationFn: ({ id, block }: { id: string; version: string; block: boolean }) =>
      block
        ? call(() => api.POST('/v1/marketplace/versions/{id}/block', { params: { path: { id } }, body: { reason } }))
        : call(() => api.POST('/v1/marketplace/versions/{id}/unblock', { params: { path: { id } }, body: {} })),
    onSuccess: (_, v) => {
      setNotice(t(v.block ? 'kill.blocked' : 'kill.unblocked', { name: plugin, version: v.version }))
      void client.invalidateQueries({ queryKey: ['plugin', scope, name] })
    },
  })
  return (
    <section aria-labelledby="kill-title">
      <h2 id="kill-title">{t('kill.title')}</h2>
      <div className="toolbar">
        <div>
          <label htmlFor="kill-plugin">{t('kill.plugin')}</label>
          <select id="kill-plugin" value={plugin} onChange={(e) => setPlugin(e.target.value)}>
            <option value="">—</option>
            {(plugins.data?.items ?? []).map((p) => (
              <option key={p.name}>{p.name}</option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="kill-reason">{t('kill.reason')}</label>
          <input id="kill-reason" value={reason} onChange={(e) => setReason(e.target.value)} />
        </div>
      </div>
      {notice && (
        <p className="status" role="status">
          {notice}
        </p>
      )}
      {act.error && (
        <p className="error" role="alert">
          {t('app.error', { message: act.error.message })}
        </p>
      )}
      <ul>
        {(detail.data?.versions ?? [])
          .filter((v) => v.status === 'approved' || v.status === 'blocked')
          .map((v) => (
            <li key={v.id}>
              {v.version} ({v.status}){' '}
              {v.status === 'approved' ? (
                <button
                  type="button"
                  className="secondary"
                  disabled={!reason}
                  onClick={() => act.mutate({ id: v.id, version: v.version, block: true })}
                >
                  {t('kill.block', { version: v.version })}
                </button>
              ) : (
                <button
                  type="button"
                  className="secondary"
                  onClick={() => act.mutate({ id: v.id, version: v.version, block: false })}
                >
                  {t('kill.unblock', { version: v.version })}
                </button>
              )}
            </li>
          ))}
      </ul>
    </section>
  )
}
