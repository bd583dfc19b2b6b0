import { type FormEvent, useState } from 'react'
import { ApiError, signIn } from '../api/client'
import type { Branding } from '../branding'
import { t } from '../i18n'

/**
 * Sign-in with a password; an account with an authenticator is asked for its current code
 * (the kernel answers AUTH_ERR_MFA_REQUIRED) and signs in with both.
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
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
      </form>
      <p>
        <a href="/console/forgot-password">{t('login.forgot')}</a>
      </p>
    </main>
  )
}
