import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useState } from 'react'
import { api, call } from '../api/client'
import type { components } from '../api/schema'
import { Capabilities } from '../components/Capabilities'
import { Dialog } from '../components/Dialog'
import { KillSwitch } from '../components/KillSwitch'
import { t } from '../i18n'

type Version = components['schemas']['Version'] & { publisherName: string | null }

/** The platform admin's review queue: manifest, check results, capability diff; approve or reject with a reason. */
export default function Reviews() {
  const client = useQueryClient()
  const [open, setOpen] = useState<Version>()
  const [reason, setReason] = useState('')
  const [notice, setNotice] = useState<string>()
  const queue = useQuery({
    queryKey: ['reviews'],
    queryFn: () => call(() => api.GET('/v1/marketplace/reviews', { params: { query: { limit: 100 } } })),
  })
  const decide = useMutation({
    mutationFn: ({ v, approve }: { v: Version; approve: boolean }) =>
      approve
        ? call(() =>
            api.POST('/v1/marketplace/versions/{id}/approve', { params: { path: { id: v.id } }, body: { reason } }),
          )
        : call(() =>
            api.POST('/v1/marketplace/versions/{id}/reject', { params: { path: { id: v.id } }, body: { reason } }),
          ),
    onSuccess: (_, { v, approve }) => {
      setOpen(undefined)
      setReason('')
      setNotice(t(approve ? 'reviews.approved' : 'reviews.rejected', { name: v.name, version: v.version }))
      void client.invalidateQueries({ queryKey: ['reviews'] })
      void client.invalidateQueries({ queryKey: ['plugins'] })
    },
  })
  return (
    <section aria-labelledby="reviews-title">
      <h1 id="reviews-title">{t('reviews.title')}</h1>
      {notice && (
        <p className="status" role="status">
          {notice}
        </p>
      )}
      {queue.error && <p className="error">{t('app.error', { message: queue.error.message })}</p>}
      {queue.data?.items.length === 0 && <p>{t('common.none')}</p>}
      <ul className="cards" aria-label={t('reviews.title')}>
        {(queue.data?.items ?? []).map((v) => (
          <li key={v.id} className="card">
            <h2>
              {v.name} {v.version}
            </h2>
            <p className="muted">{t('market.publisher', { name: v.publisherName ?? '—' })}</p>
            <button type="button" className="primary" onClick={() => setOpen(v as Version)}>
              {t('inbox.open')}
              <span className="skip">
                {' '}
                {v.name} {v.version}
              </span>
            </button>
          </li>
        ))}
      </ul>
      <KillSwitch />
      {open && (
        <Dialog title={`${open.name} ${open.version}`} onClose={() => setOpen(undefined)}>
          <h3>{t('reviews.diff')}</h3>
          <Capabilities
            list={open.diff?.capabilities.added ?? open.capabilities}
            prefix={(c) => t('inst.added', { cap: c })}
          />
          <Capabilities list={open.diff?.capabilities.removed ?? []} prefix={(c) => t('inst.removed', { cap: c })} />
          <h3>{t('reviews.checks')}</h3>
          <pre>{JSON.stringify(open.checks, null, 2)}</pre>
          <h3>{t('market.changelog')}</h3>
          <p>{open.changelog}</p>
          <details>
            <summary>manifest</summary>
            <pre>{JSON.stringify(open.manifest, null, 2)}</pre>
          </details>
          <label htmlFor="review-reason">{t('reviews.reason')}</label>
          <textarea id="review-reason" value={reason} onChange={(e) => setReason(e.target.value)} rows={3} cols={50} />
          {decide.error && (
            <p className="error" role="alert">
              {t('app.error', { message: decide.error.message })}
            </p>
          )}
          <div className="actions">
            <button
              type="button"
              className="secondary"
              disabled={!reason}
              onClick={() => decide.mutate({ v: open, approve: false })}
            >
              {t('reviews.reject')}
            </button>
            <button
              type="button"
              className="primary"
              disabled={!reason}
              onClick={() => decide.mutate({ v: open, approve: true })}
            >
              {t('reviews.approve')}
            </button>
          </div>
        </Dialog>
      )}
    </section>
  )
}
