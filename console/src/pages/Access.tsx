import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { api, call } from '../api/client'
import { can, useAuth } from '../auth'
import { Dialog } from '../components/Dialog'
import { commaList } from '../forms'
import { t } from '../i18n'
import { Roles } from './access/Roles'
import { Webhooks } from './access/Webhooks'

/**
 * Users and their roles, custom roles, API keys (the key shown once), webhooks (the signing
 * secret shown once) with their delivery log and redelivery.
 */
export default function Access() {
  const { me } = useAuth()
  return (
    <>
      {can(me, 'users.read') && <Users />}
      {can(me, 'roles.manage') && <Roles />}
      {can(me, 'api_keys.manage') && <ApiKeys />}
      {can(me, 'webhooks.manage') && <Webhooks />}
    </>
  )
}

function Users() {
  const { me } = useAuth()
  const manage = can(me, 'users.manage')
  const client = useQueryClient()
  const [notice, setNotice] = useState<string>()
  const users = useQuery({
    queryKey: ['users'],
    queryFn: () => call(() => api.GET('/v1/users', { params: { query: { limit: 100 } } })),
  })
  const roles = useQuery({ queryKey: ['roles'], enabled: manage, queryFn: () => call(() => api.GET('/v1/roles')) })
  const change = useMutation({
    mutationFn: (v: { id: string; role: string }) =>
      call(() => api.PUT('/v1/users/{id}/role', { params: { path: { id: v.id } }, body: { role: v.role } })),
    onSuccess: (u) => {
      setNotice(t('users.roleChanged', { email: u.email, role: u.role }))
      void client.invalidateQueries({ queryKey: ['users'] })
    },
  })
  function submit(e: FormEvent<HTMLFormElement>, id: string) {
    e.preventDefault()
    change.mutate({ id, role: String(new FormData(e.currentTarget).get('role')) })
  }
  return (
    <section aria-labelledby="users-title">
      <h1 id="users-title">{t('users.title')}</h1>
      {notice && (
        <p className="status" role="status">
          {notice}
        </p>
      )}
      {change.error && (
        <p className="error" role="alert">
          {t('app.error', { message: change.error.message })}
        </p>
      )}
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
              <td>
                {manage && roles.data ? (
                  <form className="inline" onSubmit={(e) => submit(e, u.id)}>
                    <label className="skip" htmlFor={`role-of-${u.id}`}>
                      {t('users.changeRole', { email: u.email })}
                    </label>
                    <select id={`role-of-${u.id}`} name="role" defaultValue={u.role} key={u.role}>
                      {roles.data.items.map((r) => (
                        <option key={r.id} value={r.name}>
                          {r.name}
                        </option>
                      ))}
                    </select>
                    <button type="submit" className="secondary">
                      {t('users.saveRole')}
                      <span className="skip"> {u.email}</span>
                    </button>
                  </form>
                ) : (
                  u.role
                )}
              </td>
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
    create.mutate({ name: String(f.get('name')), permissions: commaList(f.get('permissions')) })
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
