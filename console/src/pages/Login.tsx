import { type FormEvent, useState } from 'react'
import { ApiError, signIn } from '../api/client'
import type { Branding } from '../branding'
import { FormError } from '../components/PublicPage'
import { t } from '../i18n'

const ORG_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * Single sign-on (ADR 0079): the organisation is named by its ID — prefilled from the sign-in
 * link's `?org=` — and the browser goes to the kernel's start, which sends it to the
 * organisation's identity provider; it comes back at /console/sso-callback.
 */
function SsoSignIn() {
  const preset = new URLSearchParams(location.search).get('org') ?? ''
  const [open, setOpen] = useState(ORG_ID.test(preset))
  const [error, setError] = useState<string>()
  function start(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const org = String(new FormData(e.currentTarget).get('org')).trim()
    if (!ORG_ID.test(org)) return setError(t('login.ssoBadOrg'))
    location.assign(`/v1/auth/sso/${org.toLowerCase()}/start?returnTo=${encodeURIComponent('/console/sso-callback')}`)
  }
  if (!open)
    return (
      <button type="button" onClick={() => setOpen(true)}>
        {t('login.sso')}
      </button>
    )
  return (
    <form onSubmit={start} aria-label={t('login.sso')}>
      <label htmlFor="sso-org">{t('login.ssoOrg')}</label>
      <input id="sso-org" name="org" defaultValue={preset} aria-describedby="sso-org-hint" required />
      <p id="sso-org-hint">{t('login.ssoHint')}</p>
      <button className="primary" type="submit">
        {t('login.ssoContinue')}
      </button>
      <FormError text={error} />
    </form>
  )
}

/**
 * Sign-in with a password; an account with an authenticator is asked for its current code
 * (the kernel answers AUTH_ERR_MFA_REQUIRED) and signs in with both. Or single sign-on.
 */
export function Login(props: { branding: Branding; onSignedIn: () => Promise<void> }) {
  const [error, setError] = useState<string>()
  const [busy, setBusy] = useState(false)
  const [askCode, setAskCode] = useState(false)
  const name = props.branding.displayName ?? 'Trellis'
  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const form = new FormData(e.currentTarget)
    setBusy(true)
    setError(undefined)
    try {
      await signIn(String(form.get('email')), String(form.get('password')), String(form.get('totp') ?? '') || undefined)
      await props.onSignedIn()
    } catch (err) {
      if (err instanceof ApiError && err.problem.code === 'AUTH_ERR_MFA_REQUIRED' && !askCode) setAskCode(true)
      else setError(t('login.failed', { message: (err as Error).message }))
      setBusy(false)
    }
  }
  return (
    <main className="login">
      {props.branding.logoUrl && <img src={props.branding.logoUrl} alt="" height={40} />}
      <h1>{t('login.title', { name })}</h1>
      <form onSubmit={submit}>
        <label htmlFor="email">{t('login.email')}</label>
        <input id="email" name="email" type="email" autoComplete="username" required />
        <label htmlFor="password">{t('login.password')}</label>
        <input id="password" name="password" type="password" autoComplete="current-password" required />
        {askCode && (
          <>
            <p role="status">{t('login.codeAsked')}</p>
            <label htmlFor="totp">{t('login.code')}</label>
            <input id="totp" name="totp" inputMode="numeric" autoComplete="one-time-code" pattern="[0-9]{6}" required />
          </>
        )}
        <button className="primary" type="submit" disabled={busy}>
          {t('login.submit')}
        </button>
        <FormError text={error} />
      </form>
      <p>
        <a href="/console/forgot-password">{t('login.forgot')}</a>
      </p>
      <SsoSignIn />
    </main>
  )
}
