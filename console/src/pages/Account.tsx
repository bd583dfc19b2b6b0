import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { api, call } from '../api/client'
import { t } from '../i18n'

/** The signed-in person's account: their authenticator (TOTP) and their password. */
export default function Account() {
  return (
    <>
      <h1>{t('account.title')}</h1>
      <Authenticator />
      <Password />
    </>
  )
}

function Authenticator() {
  const client = useQueryClient()
  const status = useQuery({ queryKey: ['mfa'], queryFn: () => call(() => api.GET('/v1/me/mfa')) })
  const enrol = useMutation({ mutationFn: () => call(() => api.POST('/v1/me/mfa/totp')) })
  const confirm = useMutation({
    mutationFn: (code: string) => call(() => api.POST('/v1/me/mfa/totp/confirm', { body: { code } })),
    onSuccess: () => {
      enrol.reset()
      void client.invalidateQueries({ queryKey: ['mfa'] })
    },
  })
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    confirm.mutate(String(new FormData(e.currentTarget).get('code')))
  }
  const error = enrol.error ?? confirm.error
  const state = status.data?.totp
  return (
    <section aria-labelledby="mfa-title">
      <h2 id="mfa-title">{t('account.mfa')}</h2>
      {state && <p data-testid="mfa-state">{t(state === 'enrolled' ? 'account.mfaOn' : 'account.mfaOff')}</p>}
      {error && (
        <p className="error" role="alert">
          {t('app.error', { message: error.message })}
        </p>
      )}
      {state !== 'enrolled' && !enrol.data && (
        <button type="button" className="primary" onClick={() => enrol.mutate()} disabled={enrol.isPending}>
          {t('account.mfaStart')}
        </button>
      )}
      {enrol.data && (
        <>
          <p>{t('account.mfaScan')}</p>
          <p>
            <a href={enrol.data.otpauthUri}>{t('account.mfaLink')}</a>
          </p>
          <p>
            {t('account.mfaSecret')} <code data-testid="mfa-secret">{enrol.data.secret}</code>
          </p>
          <p>{t('account.mfaRecovery')}</p>
          <ul data-testid="mfa-recovery">
            {enrol.data.recoveryCodes.map((c) => (
              <li key={c}>
                <code>{c}</code>
              </li>
            ))}
          </ul>
          <form className="toolbar" onSubmit={submit}>
            <div>
              <label htmlFor="mfa-code">{t('account.mfaCode')}</label>
              <input id="mfa-code" name="code" inputMode="numeric" autoComplete="one-time-code" required />
            </div>
            <button type="submit" className="primary" disabled={confirm.isPending}>
              {t('account.mfaConfirm')}
            </button>
          </form>
        </>
      )}
    </section>
  )
}

function Password() {
  const [notice, setNotice] = useState<string>()
  const change = useMutation({
    mutationFn: (body: { currentPassword: string; newPassword: string }) =>
      call(() => api.POST('/v1/auth/password', { body })),
    onSuccess: () => setNotice(t('account.passwordChanged')),
  })
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const form = e.currentTarget
    const f = new FormData(form)
    change.mutate(
      { currentPassword: String(f.get('current')), newPassword: String(f.get('next')) },
      { onSuccess: () => form.reset() },
    )
  }
  return (
    <section aria-labelledby="password-title">
      <h2 id="password-title">{t('account.password')}</h2>
      <form onSubmit={submit}>
        <label htmlFor="pw-current">{t('account.currentPassword')}</label>
        <input id="pw-current" name="current" type="password" autoComplete="current-password" required />
        <label htmlFor="pw-next">{t('account.newPassword')}</label>
        <input id="pw-next" name="next" type="password" autoComplete="new-password" required />
        <div className="actions">
          <button type="submit" className="primary" disabled={change.isPending}>
            {t('account.changePassword')}
          </button>
        </div>
      </form>
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
    </section>
  )
}
