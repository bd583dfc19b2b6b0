import { useMutation } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { api, call } from '../api/client'
import { can, useAuth } from '../auth'
import { type OrgApi, Organisations } from '../components/Organisations'
import { t } from '../i18n'

const tenants: OrgApi = {
  kind: 'tenants',
  list: () => call(() => api.GET('/v1/tenants', { params: { query: { limit: 100 } } })),
  create: (body) => call(() => api.POST('/v1/tenants', { body })),
  setStatus: (id, action) =>
    call(() =>
      action === 'suspend'
        ? api.POST('/v1/tenants/{id}/suspend', { params: { path: { id } } })
        : api.POST('/v1/tenants/{id}/resume', { params: { path: { id } } }),
    ),
}

/**
 * Tenants the caller sees. Those who manage tenants (the platform, a partner for the tenants it
 * is the channel for) create, suspend and resume them; a partner admin edits the branding its
 * tenants' console shows.
 */
export default function Tenants() {
  const { me, branding } = useAuth()
  const [notice, setNotice] = useState<string>()
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
  return (
    <section aria-labelledby="tenants-title">
      <h1 id="tenants-title">{t('tenants.title')}</h1>
      <Organisations orgs={tenants} manage={can(me, 'tenants.manage')} />
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
          {notice && (
            <p className="status" role="status">
              {notice}
            </p>
          )}
          {save.error && (
            <p className="error" role="alert">
              {t('app.error', { message: save.error.message })}
            </p>
          )}
        </form>
      )}
    </section>
  )
}
