import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { api, call } from '../../api/client'
import { commaList } from '../../forms'
import { t } from '../../i18n'

/** The organisation's roles — built-in and custom — and a form for a custom role made of permissions. */
export function Roles() {
  const client = useQueryClient()
  const [notice, setNotice] = useState<string>()
  const roles = useQuery({ queryKey: ['roles'], queryFn: () => call(() => api.GET('/v1/roles')) })
  const create = useMutation({
    mutationFn: (body: { name: string; description: string; permissions: string[] }) =>
      call(() => api.POST('/v1/roles', { body })),
    onSuccess: (r) => {
      setNotice(t('roles.created', { name: r.name }))
      void client.invalidateQueries({ queryKey: ['roles'] })
    },
  })
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const form = e.currentTarget
    const f = new FormData(form)
    create.mutate(
      {
        name: String(f.get('name')),
        description: String(f.get('description') ?? ''),
        permissions: commaList(f.get('permissions')),
      },
      { onSuccess: () => form.reset() },
    )
  }
  return (
    <section aria-labelledby="roles-title">
      <h2 id="roles-title">{t('roles.title')}</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">{t('roles.name')}</th>
            <th scope="col">{t('roles.permissions')}</th>
            <th scope="col">{t('roles.kind')}</th>
          </tr>
        </thead>
        <tbody>
          {(roles.data?.items ?? []).map((r) => (
            <tr key={r.id}>
              <td>{r.name}</td>
              <td>{r.permissions.join(', ')}</td>
              <td className="muted">{r.builtin ? t('roles.builtin') : t('roles.custom')}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form onSubmit={submit}>
        <h3>{t('roles.new')}</h3>
        <label htmlFor="role-name">{t('roles.name')}</label>
        <input id="role-name" name="name" required pattern="[a-z][a-z0-9_\-]{1,62}" />
        <label htmlFor="role-description">{t('roles.description')}</label>
        <input id="role-description" name="description" />
        <label htmlFor="role-permissions">{t('roles.permissionsInput')}</label>
        <input id="role-permissions" name="permissions" required />
        <div className="actions">
          <button type="submit" className="primary" disabled={create.isPending}>
            {t('roles.create')}
          </button>
        </div>
      </form>
      {notice && (
        <p className="status" role="status">
          {notice}
        </p>
      )}
      {create.error && (
        <p className="error" role="alert">
          {t('app.error', { message: create.error.message })}
        </p>
      )}
    </section>
  )
}
