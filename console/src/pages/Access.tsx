import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { api, call } from '../api/client'
import { can, useAuth } from '../auth'
import { Dialog } from '../components/Dialog'
import { t } from '../i18n'

/** Users and their roles, API keys (the key shown once), webhooks with their delivery log and redelivery. */
export default function Access() {
  const { me } = useAuth()
  return (
    <>
      {can(me, 'users.read') && <Users />}
      {can(me, 'api_keys.manage') && <ApiKeys />}
      {can(me, 'webhooks.manage') && <Webhooks />}
    </>
  )
}

function Users() {
  const users = useQuery({
    queryKey: ['users'],
    queryFn: () => call(() => api.GET('/v1/users', { params: { query: { limit: 100 } } })),
  })
  return (
    <section aria-labelledby="users-title">
      <h1 id="users-title">{t('users.title')}</h1>
      <table>
        <thead>
          <tr>
            <th scope="col">{t('login.email')}</th>
            <th scope="col">{t('users.role')}</th>
            <th scope="col">{t('users.status')}</th>
          </tr>
        </thead>
        <tbody>
          {(users.data?.items ?? []).map((u) => (
            <tr key={u.id}>
              <td>{u.email}</td>
              <td>{u.role}</td>
              <td>{u.status}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}

function ApiKeys() {
  const client = useQueryClient()
  const [secret, setSecret] = useState<string>()
  const keys = useQuery({
    queryKey: ['api-keys'],
    queryFn: () => call(() => api.GET('/v1/api-keys', { params: { query: { limit: 100 } } })),
  })
  const create = useMutation({
    mutationFn: (body: { name: string; permissions: string[] }) => call(() => api.POST('/v1/api-keys', { body })),
    onSuccess: (k) => {
      setSecret(k.key)
      void client.invalidateQueries({ queryKey: ['api-keys'] })
    },
  })
  const revoke = useMutation({
    mutationFn: (id: string) => call(() => api.DELETE('/v1/api-keys/{id}', { params: { path: { id } } })),
    onSuccess: () => void client.invalidateQueries({ queryKey: ['api-keys'] }),
  })
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const f = new FormData(e.currentTarget)
    const permissions = String(f.get('permissions') ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)
    create.mutate({ name: String(f.get('name')), permissions })
  }
  const error = create.error ?? revoke.error
  return (
    <section aria-labelledby="keys-title">
      <h2 id="keys-title">{t('keys.title')}</h2>
      <form className="toolbar" onSubmit={submit}>
        <div>
          <label htmlFor="key-name">{t('keys.name')}</label>
          <input id="key-name" name="name" required />
        </div>
        <div>
          <label htmlFor="key-perms">{t('keys.permissions')}</label>
          <input id="key-perms" name="permissions" />
        </div>
        <button type="submit" className="primary">
          {t('keys.create')}
        </button>
      </form>
      {error && (
        <p className="error" role="alert">
          {t('app.error', { message: error.message })}
        </p>
      )}
      <table>
        <tbody>
          {(keys.data?.items ?? []).map((k) => (
            <tr key={k.id}>
              <td>{k.name}</td>
              <td>
                <code>{k.prefix}…</code>
              </td>
              <td>{k.permissions.join(', ')}</td>
              <td>
                {k.revokedAt ? (
                  t('keys.revoked')
                ) : (
                  <button type="button" className="secondary" onClick={() => revoke.mutate(k.id)}>
                    {t('keys.revoke')}
                    <span className="skip"> {k.name}</span>
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {secret && (
        <Dialog title={t('keys.title')} onClose={() => setSecret(undefined)}>
          <p>{t('keys.shownOnce')}</p>
          <pre data-testid="new-api-key">{secret}</pre>
        </Dialog>
      )}
    </section>
  )
}

function Webhooks() {
  const [open, setOpen] = useState<string>()
  const [notice, setNotice] = useState<string>()
  const hooks = useQuery({
    queryKey: ['webhooks'],
    queryFn: () => call(() => api.GET('/v1/webhooks', { params: { query: { limit: 100 } } })),
  })
  const deliveries = useQuery({
    queryKey: ['deliveries', open],
    enabled: !!open,
    queryFn: () =>
      call(() =>
        api.GET('/v1/webhooks/{id}/deliveries', { params: { path: { id: open ?? '' }, query: { limit: 50 } } }),
      ),
  })
  const redeliver = useMutation({
    mutationFn: (v: { id: string; deliveryId: string }) =>
      call(() => api.POST('/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver', { params: { path: v } })),
    onSuccess: () => {
      setNotice(t('hooks.redelivered'))
      void deliveries.refetch()
    },
  })
  return (
    <section aria-labelledby="hooks-title">
      <h2 id="hooks-title">{t('hooks.title')}</h2>
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
          <table>
            <tbody>
              {(deliveries.data?.items ?? []).map((d) => (
                <tr key={d.id}>
                  <td>{d.eventType}</td>
                  <td>{d.status}</td>
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
