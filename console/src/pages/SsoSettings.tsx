import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { ApiError, api, call } from '../api/client'
import { useAuth } from '../auth'
import { Dialog } from '../components/Dialog'
import { Outcome } from '../components/Outcome'
import { commaList } from '../forms'
import { t } from '../i18n'

type Provider = {
  issuer: string
  clientId: string
  allowedDomains: string[]
  roleClaim?: string
  roleMap?: Record<string, string>
  defaultRole: string
  ssoOnly: boolean
  enabled: boolean
}

/** `erp-admins = tenant_admin` lines as a claim-value → role map (blank lines skipped). */
function roleMapOf(text: string): Record<string, string> {
  const map: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const at = line.indexOf('=')
    if (at <= 0) continue
    const [value, role] = [line.slice(0, at).trim(), line.slice(at + 1).trim()]
    if (value && role) map[value] = role
  }
  return map
}

const roleMapText = (map: Record<string, string> | undefined) =>
  Object.entries(map ?? {})
    .map(([value, role]) => `${value} = ${role}`)
    .join('\n')

/**
 * An organisation's OpenID Connect provider, for its admins (users.manage): issuer, client id,
 * the client secret write-only (never shown; kept unless a new one is typed), the e-mail
 * domains it may vouch for, and which roles its claims map to. The sign-in link and the
 * redirect URI to register at the provider are shown beside it.
 */
export default function SsoSettings() {
  const { me } = useAuth()
  const client = useQueryClient()
  const [notice, setNotice] = useState<string>()
  const [confirm, setConfirm] = useState(false)
  const provider = useQuery({
    queryKey: ['sso'],
    queryFn: async () => {
      try {
        return (await call(() => api.GET('/v1/identity/sso'))) as Provider
      } catch (err) {
        if (err instanceof ApiError && err.problem.code === 'AUTH_ERR_SSO_NOT_CONFIGURED') return null
        throw err
      }
    },
  })
  const roles = useQuery({ queryKey: ['roles'], queryFn: () => call(() => api.GET('/v1/roles')) })
  const save = useMutation({
    mutationFn: (body: Provider & { clientSecret?: string }) => call(() => api.PUT('/v1/identity/sso', { body })),
    onSuccess: (saved) => {
      client.setQueryData(['sso'], saved)
      setNotice(t('ssoSet.saved'))
    },
  })
  const remove = useMutation({
    mutationFn: () => call(() => api.DELETE('/v1/identity/sso')),
    onSuccess: () => {
      setConfirm(false)
      client.setQueryData(['sso'], null)
      setNotice(t('ssoSet.removed'))
    },
  })
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const form = e.currentTarget
    const f = new FormData(form)
    const secret = String(f.get('clientSecret') ?? '')
    const claim = String(f.get('roleClaim') ?? '').trim()
    save.mutate(
      {
        issuer: String(f.get('issuer')).trim(),
        clientId: String(f.get('clientId')).trim(),
        ...(secret ? { clientSecret: secret } : {}),
        allowedDomains: commaList(f.get('allowedDomains')).map((d) => d.toLowerCase()),
        ...(claim ? { roleClaim: claim } : {}),
        roleMap: roleMapOf(String(f.get('roleMap') ?? '')),
        defaultRole: String(f.get('defaultRole')),
        ssoOnly: f.get('ssoOnly') === 'on',
        enabled: f.get('enabled') === 'on',
      },
      { onSuccess: () => form.reset() },
    )
  }
  if (provider.isPending) return <p role="status">{t('app.loading')}</p>
  const p = provider.data ?? undefined
  // The form is keyed by what is stored, so a save or removal shows the stored values afresh.
  const key = JSON.stringify(p ?? {})
  return (
    <section aria-labelledby="sso-set-title">
      <h1 id="sso-set-title">{t('ssoSet.title')}</h1>
      <p data-testid="sso-state">{p ? t(p.enabled ? 'ssoSet.on' : 'ssoSet.paused') : t('ssoSet.none')}</p>
      <dl>
        <dt>{t('ssoSet.link')}</dt>
        <dd>
          <code data-testid="sso-link">{`${location.origin}/console/?org=${me.org.id}`}</code>
        </dd>
        <dt>{t('ssoSet.redirect')}</dt>
        <dd>
          <code>{`${location.origin}/v1/auth/sso/callback`}</code>
        </dd>
      </dl>
      <Outcome notice={notice} error={provider.error ?? save.error ?? remove.error} />
      <form key={key} onSubmit={submit}>
        <label htmlFor="sso-issuer">{t('ssoSet.issuer')}</label>
        <input id="sso-issuer" name="issuer" type="url" defaultValue={p?.issuer} required />
        <label htmlFor="sso-client">{t('ssoSet.clientId')}</label>
        <input id="sso-client" name="clientId" defaultValue={p?.clientId} required />
        <label htmlFor="sso-secret">{t('ssoSet.secret')}</label>
        <input
          id="sso-secret"
          name="clientSecret"
          type="password"
          autoComplete="off"
          aria-describedby="sso-secret-hint"
          required={!p}
        />
        <p id="sso-secret-hint" className="muted" data-testid="sso-secret-hint">
          {t(p ? 'ssoSet.secretKept' : 'ssoSet.secretNeeded')}
        </p>
        <label htmlFor="sso-domains">{t('ssoSet.domains')}</label>
        <input id="sso-domains" name="allowedDomains" defaultValue={p?.allowedDomains.join(', ')} required />
        <label htmlFor="sso-claim">{t('ssoSet.claim')}</label>
        <input id="sso-claim" name="roleClaim" defaultValue={p?.roleClaim} placeholder="groups" />
        <label htmlFor="sso-map">{t('ssoSet.map')}</label>
        <textarea
          id="sso-map"
          name="roleMap"
          rows={3}
          defaultValue={roleMapText(p?.roleMap)}
          aria-describedby="sso-map-hint"
        />
        <p id="sso-map-hint" className="muted">
          {t('ssoSet.mapHint')}
        </p>
        <label htmlFor="sso-default">{t('ssoSet.defaultRole')}</label>
        <select id="sso-default" name="defaultRole" defaultValue={p?.defaultRole} required key={roles.data ? 1 : 0}>
          {(roles.data?.items ?? []).map((r) => (
            <option key={r.name} value={r.name}>
              {r.name}
            </option>
          ))}
        </select>
        <label>
          <input type="checkbox" name="ssoOnly" defaultChecked={p?.ssoOnly ?? false} /> {t('ssoSet.ssoOnly')}
        </label>
        <label>
          <input type="checkbox" name="enabled" defaultChecked={p?.enabled ?? true} /> {t('ssoSet.enabled')}
        </label>
        <div className="actions">
          <button type="submit" className="primary" disabled={save.isPending}>
            {t('ssoSet.save')}
          </button>
          {p && (
            <button type="button" className="secondary" onClick={() => setConfirm(true)}>
              {t('ssoSet.remove')}
            </button>
          )}
        </div>
      </form>
      {confirm && (
        <Dialog title={t('ssoSet.removeTitle')} onClose={() => setConfirm(false)}>
          <p>{t('ssoSet.removeText')}</p>
          <button type="button" className="primary" onClick={() => remove.mutate()} disabled={remove.isPending}>
            {t('ssoSet.removeConfirm')}
          </button>
        </Dialog>
      )}
    </section>
  )
}
