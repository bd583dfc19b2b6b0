import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { api, call } from '../../api/client'
import { Dialog } from '../../components/Dialog'
import { commaList } from '../../forms'
import { t } from '../../i18n'

/** What the delivery log can be narrowed to (the API's status filters); '' shows every delivery. */
const DELIVERY_FILTERS = ['', 'dead_letter', 'failed', 'retrying', 'pending', 'delivered'] as const
type DeliveryFilter = (typeof DELIVERY_FILTERS)[number]

/**
 * Webhooks: created with their event types (the signing secret shown once), each with its
 * delivery log (narrowed to dead letters, failures, retries…) and redelivery.
 */
export function Webhooks() {
  const [open, setOpen] = useState<string>()
  const [shown, setShown] = useState<DeliveryFilter>('')
  const [notice, setNotice] = useState<string>()
  const [secret, setSecret] = useState<string>()
  const client = useQueryClient()
  const hooks = useQuery({
    queryKey: ['webhooks'],
    queryFn: () => call(() => api.GET('/v1/webhooks', { params: { query: { limit: 100 } } })),
  })
  const deliveries = useQuery({
    queryKey: ['deliveries', open, shown],
    enabled: !!open,
    queryFn: () =>
      call(() =>
        api.GET('/v1/webhooks/{id}/deliveries', {
          params: { path: { id: open ?? '' }, query: { limit: 50, ...(shown ? { status: shown } : {}) } },
        }),
      ),
  })
  const redeliver = useMutation({
    mutationFn: (v: { id: string; deliveryId: string }) =>
      call(() => api.POST('/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver', { params: { path: v } })),
    onSuccess: () => {
      setNotice(t('hooks.redelivered'))
      // Its state changed: every filtered view of the log is out of date.
      void client.invalidateQueries({ queryKey: ['deliveries'] })
    },
  })
  const create = useMutation({
    mutationFn: (body: { url: string; types: string[] }) => call(() => api.POST('/v1/webhooks', { body })),
    onSuccess: (h) => {
      setSecret(h.secret)
      void client.invalidateQueries({ queryKey: ['webhooks'] })
    },
  })
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const form = e.currentTarget
    const f = new FormData(form)
    create.mutate({ url: String(f.get('url')), types: commaList(f.get('types')) }, { onSuccess: () => form.reset() })
  }
  const error = create.error ?? redeliver.error
  return (
    <section aria-labelledby="hooks-title">
      <h2 id="hooks-title">{t('hooks.title')}</h2>
      <form className="toolbar" onSubmit={submit}>
        <div>
          <label htmlFor="hook-url">{t('hooks.url')}</label>
          <input id="hook-url" name="url" type="url" required />
        </div>
        <div>
          <label htmlFor="hook-types">{t('hooks.types')}</label>
          <input id="hook-types" name="types" required />
        </div>
        <button type="submit" className="primary" disabled={create.isPending}>
          {t('hooks.create')}
        </button>
      </form>
      {error && (
        <p className="error" role="alert">
          {t('app.error', { message: error.message })}
        </p>
      )}
      {secret && (
        <Dialog title={t('hooks.secretTitle')} onClose={() => setSecret(undefined)}>
          <p>{t('hooks.shownOnce')}</p>
          <pre data-testid="new-webhook-secret">{secret}</pre>
        </Dialog>
      )}
      {notice && (
        <p className="status" role="status">
          {notice}
        </p>
      )}
      <ul>
        {(hooks.data?.items ?? []).map((h) => (
          <li key={h.id}>
            <code>{h.url}</code> ({h.status}) {h.types.join(', ')}{' '}
            <button type="button" className="secondary" onClick={() => setOpen(h.id)}>
              {t('hooks.deliveries')}
              <span className="skip"> {h.url}</span>
            </button>
          </li>
        ))}
      </ul>
      {open && (
        <Dialog title={t('hooks.deliveries')} onClose={() => setOpen(undefined)}>
          <div className="toolbar">
            <div>
              <label htmlFor="delivery-filter">{t('hooks.filter')}</label>
              <select
                id="delivery-filter"
                value={shown}
                onChange={(e) => setShown(e.currentTarget.value as DeliveryFilter)}
              >
                {DELIVERY_FILTERS.map((f) => (
                  <option key={f} value={f}>
                    {t(`hooks.filter.${f || 'all'}`)}
                  </option>
                ))}
              </select>
            </div>
          </div>
          {deliveries.data && deliveries.data.items.length === 0 && <p role="status">{t('hooks.none')}</p>}
          <table>
            <tbody>
              {(deliveries.data?.items ?? []).map((d) => (
                <tr key={d.id}>
                  <td>{d.eventType}</td>
                  <td>{d.failureReason ? `${d.status} (${d.failureReason})` : d.status}</td>
                  <td>{t('hooks.attempts', { n: d.attempts, status: d.lastStatus ?? '—' })}</td>
                  <td>
                    <button
                      type="button"
                      className="secondary"
                      onClick={() => redeliver.mutate({ id: open, deliveryId: d.id })}
                    >
                      {t('hooks.redeliver')}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Dialog>
      )}
    </section>
  )
}
