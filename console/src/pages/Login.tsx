import { type FormEvent, useState } from 'react'
import { signIn } from '../api/client'
import type { Branding } from '../branding'
import { t } from '../i18n'

export function Login(props: { branding: Branding; onSignedIn: () => Promise<void> }) {
  const [error, setError] = useState<string>()
  const [busy, setBusy] = useState(false)
  const name = props.branding.displayName ?? 'Trellis'
  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const form = new FormData(e.currentTarget)
    setBusy(true)
    setError(undefined)
    try {
      await signIn(String(form.get('email')), String(form.get('password')))
      await props.onSignedIn()
    } catch (err) {
      setError(t('login.failed', { message: (err as Error).message }))
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
        <button className="primary" type="submit" disabled={busy}>
          {t('login.submit')}
        </button>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  )
}
