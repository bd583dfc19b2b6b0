import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { api, call } from '../api/client'
import { can, useAuth } from '../auth'
import { Dialog } from '../components/Dialog'
import { t } from '../i18n'

type Tenant = { id: string; name: string; slug: string; status: string }

/**
 * Tenants the caller sees. Those who manage tenants (the platform, a partner for the tenants it
 * is the channel for) create them with their first admin, suspend them (all their access stops
 * at once, after a confirmation) and resume them; a partner admin edits the branding its
 * tenants' console shows.
 */
export default function Tenants() {
  const { me, branding } = useAuth()
  const client = useQueryClient()
  const manage = can(me, 'tenants.manage')
  const [notice, setNotice] = useState<string>()
  const [suspending, setSuspending] = useState<Tenant>()
  const tenants = useQuery({
    queryKey: ['tenants'],
    queryFn: () => call(() => api.GET('/v1/tenants', { params: { query: { limit: 100 } } })),
  })
  const done = (message: string) => {
    setNotice(message)
    void client.invalidateQueries({ queryKey: ['tenants'] })
  }
  const create = useMutation({
    mutationFn: (body: { name: string; slug: string; admin: { email: string; name: string; password: string } }) =>
      call(() => api.POST('/v1/tenants', { body })),
    onSuccess: (x) => done(t('tenants.created', { name: x.name })),
  })
  const setStatus = useMutation({
    mutationFn: ({ tenant, action }: { tenant: Tenant; action: 'suspend' | 'resume' }) =>
      call(() =>
        action === 'suspend'
          ? api.POST('/v1/tenants/{id}/suspend', { params: { path: { id: tenant.id } } })
          : api.POST('/v1/tenants/{id}/resume', { params: { path: { id: tenant.id } } }),
      ),
    onSuccess: (x) => {
      setSuspending(undefined)
      done(t(x.status === 'suspended' ? 'tenants.suspended' : 'tenants.resumed', { name: x.name }))
    },
  })
  const save = useMutation({
    mutationFn: (b: Record<string, string>) =>
      call(() => api.PATCH('/v1/partners/{id}', { params: { path: { id: me.org.id } }, body: { branding: b } })),
    onSuccess: () => setNotice(t('tenants.saved')),
  })
  function submitBranding(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const f = new FormData(e.currentTarget)
    const b: Record<string, string> = {}
    for (const k of ['displayName', 'primaryColor', 'logoUrl', 'customDomain']) {
      const v = String(f.get(k) ?? '')
      if (v) b[k] = v
    }
    save.mutate(b)
  }
  function submitTenant(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const form = e.currentTarget
    const f = new FormData(form)
    const v = (k: string) => String(f.get(k) ?? '')
    create.mutate(
      {
        name: v('name'),
        slug: v('slug'),
        admin: { email: v('adminEmail'), name: v('adminName'), password: v('adminPassword') },
      },
      { onSuccess: () => form.reset() },
    )
  }
  const error = create.error ?? setStatus.error ?? save.error
  return (
    <section aria-labelledby="tenants-title">
      <h1 id="tenants-title">{t('tenants.title')}</h1>
      {notice && (
        <p className="status" role="status">
          {notice}
        </p>
      )}
      {error && !suspending && (
        <p className="error" role="alert">
          {t('app.error', { message: error.message })}
        </p>
      )}
      <table>
        <thead>
          <tr>
            <th scope="col">{t('tenants.name')}</th>
            <th scope="col">{t('tenants.slug')}</th>
            <th scope="col">{t('tenants.status')}</th>
            {manage && (
              <th scope="col">
                <span className="skip">{t('tenants.actions')}</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {(tenants.data?.items ?? []).map((x) => (
            <tr key={x.id}>
              <td>{x.name}</td>
              <td className="muted">{x.slug}</td>
              <td>{x.status}</td>
              {manage && (
                <td>
                  {x.status === 'suspended' ? (
                    <button
                      type="button"
                      className="secondary"
                      onClick={() => setStatus.mutate({ tenant: x, action: 'resume' })}
                    >
                      {t('tenants.resume', { name: x.name })}
                    </button>
                  ) : (
                    <button type="button" className="secondary" onClick={() => setSuspending(x)}>
                      {t('tenants.suspend', { name: x.name })}
                    </button>
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {suspending && (
        <Dialog title={t('tenants.suspendTitle', { name: suspending.name })} onClose={() => setSuspending(undefined)}>
          <p>{t('tenants.suspendWarning')}</p>
          {setStatus.error && (
            <p className="error" role="alert">
              {t('app.error', { message: setStatus.error.message })}
            </p>
          )}
          <div className="actions">
            <button type="button" className="secondary" onClick={() => setSuspending(undefined)}>
              {t('common.cancel')}
            </button>
            <button
              type="button"
              className="primary"
              disabled={setStatus.isPending}
              onClick={() => setStatus.mutate({ tenant: suspending, action: 'suspend' })}
            >
              {t('tenants.suspendConfirm')}
            </button>
          </div>
        </Dialog>
      )}
      {manage && (
        <form onSubmit={submitTenant}>
          <h2>{t('tenants.new')}</h2>
          <label htmlFor="n-name">{t('tenants.name')}</label>
          <input id="n-name" name="name" required maxLength={200} />
          <label htmlFor="n-slug">{t('tenants.slug')}</label>
          <input id="n-slug" name="slug" required pattern="[a-z0-9][a-z0-9-]*" />
          <label htmlFor="n-admin-email">{t('tenants.adminEmail')}</label>
          <input id="n-admin-email" name="adminEmail" type="email" required />
          <label htmlFor="n-admin-name">{t('tenants.adminName')}</label>
          <input id="n-admin-name" name="adminName" required />
          <label htmlFor="n-admin-password">{t('tenants.adminPassword')}</label>
          <input id="n-admin-password" name="adminPassword" type="password" autoComplete="new-password" required />
          <div className="actions">
            <button type="submit" className="primary" disabled={create.isPending}>
              {t('tenants.create')}
            </button>
          </div>
        </form>
      )}
      {me.org.kind === 'partner' && (
        <form onSubmit={submitBranding}>
          <h2>{t('tenants.brand')}</h2>
          <label htmlFor="b-name">{t('tenants.displayName')}</label>
          <input id="b-name" name="displayName" defaultValue={branding.displayName} />
          <label htmlFor="b-color">{t('tenants.color')}</label>
          <input id="b-color" name="primaryColor" defaultValue={branding.primaryColor} pattern="#[0-9a-fA-F]{6}" />
          <label htmlFor="b-logo">{t('tenants.logo')}</label>
          <input id="b-logo" name="logoUrl" type="url" defaultValue={branding.logoUrl} />
          <label htmlFor="b-domain">{t('tenants.domain')}</label>
          <input id="b-domain" name="customDomain" />
          <div className="actions">
            <button type="submit" className="primary">
              {t('tenants.save')}
            </button>
          </div>
        </form>
      )}
    </section>
  )
}
