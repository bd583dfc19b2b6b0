import { type FormEvent, useState } from 'react'
import { publicPost } from '../api/client'
import type { Branding } from '../branding'
import { FormError, PublicPage } from '../components/PublicPage'
import { t } from '../i18n'

/** Signed out: ask for a reset link by e-mail (the answer is the same whether an account exists or not). */
export function ForgotPassword(props: { branding: Branding }) {
  const [sent, setSent] = useState(false)
  const [error, setError] = useState<string>()
  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    setError(undefined)
    try {
      await publicPost('/v1/auth/password/forgot', { email: String(new FormData(e.currentTarget).get('email')) })
      setSent(true)
    } catch (err) {
      setError(t('app.error', { message: (err as Error).message }))
    }
  }
  return (
    <PublicPage branding={props.branding} title={t('reset.forgotTitle')}>
      {sent ? (
        <p role="status">{t('reset.sent')}</p>
      ) : (
        <form onSubmit={submit}>
          <label htmlFor="email">{t('login.email')}</label>
          <input id="email" name="email" type="email" autoComplete="username" required />
          <button className="primary" type="submit">
            {t('reset.send')}
          </button>
          <FormError text={error} />
        </form>
      )}
    </PublicPage>
  )
}

/** From the e-mailed link (`?token=`): choose a new password; every session of the account ends. */
export function ResetPassword(props: { branding: Branding }) {
  const [done, setDone] = useState(false)
  const [error, setError] = useState<string>()
  const token = new URLSearchParams(location.search).get('token') ?? ''
  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const f = new FormData(e.currentTarget)
    setError(undefined)
    if (f.get('password') !== f.get('again')) return setError(t('reset.mismatch'))
    try {
      await publicPost('/v1/auth/password/reset', { token, newPassword: String(f.get('password')) })
      setDone(true)
    } catch (err) {
      setError(t('app.error', { message: (err as Error).message }))
    }
  }
  return (
    <PublicPage branding={props.branding} title={t('reset.title')}>
      {done ? (
        <p role="status">{t('reset.done')}</p>
      ) : (
        <form onSubmit={submit}>
          <label htmlFor="new-password">{t('reset.password')}</label>
          <input id="new-password" name="password" type="password" autoComplete="new-password" required />
          <label htmlFor="new-password-again">{t('reset.again')}</label>
          <input id="new-password-again" name="again" type="password" autoComplete="new-password" required />
          <button className="primary" type="submit">
            {t('reset.submit')}
          </button>
          <FormError text={error} />
        </form>
      )}
    </PublicPage>
  )
}
