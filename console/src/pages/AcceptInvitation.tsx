import { type FormEvent, useState } from 'react'
import { publicPost } from '../api/client'
import type { Branding } from '../branding'
import { FormError, PublicPage } from '../components/PublicPage'
import { t } from '../i18n'

/**
 * From the e-mailed invitation (`?token=`): the invited person joins the organisation — with a
 * name and a password for a new account, or with the password of the account the address
 * already has (the kernel tells which applies only to the holder of the link).
 */
export function AcceptInvitation(props: { branding: Branding }) {
  const [done, setDone] = useState(false)
  const [error, setError] = useState<string>()
  const [busy, setBusy] = useState(false)
  const token = new URLSearchParams(location.search).get('token') ?? ''
  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const f = new FormData(e.currentTarget)
    setError(undefined)
    if (f.get('password') !== f.get('again')) return setError(t('reset.mismatch'))
    setBusy(true)
    try {
      const name = String(f.get('name') ?? '').trim()
      await publicPost('/v1/invitations/accept', {
        token,
        password: String(f.get('password')),
        ...(name ? { name } : {}),
      })
      setDone(true)
    } catch (err) {
      setError(t('app.error', { message: (err as Error).message }))
    } finally {
      setBusy(false)
    }
  }
  return (
    <PublicPage
      branding={props.branding}
      title={t('invite.title', { name: props.branding.displayName ?? 'Trellis' })}
      back={done ? t('invite.signIn') : undefined}
    >
      {done ? (
        <p role="status">{t('invite.done')}</p>
      ) : (
        <form onSubmit={submit}>
          <p id="invite-hint">{t('invite.hint')}</p>
          <label htmlFor="invite-name">{t('invite.name')}</label>
          <input id="invite-name" name="name" autoComplete="name" aria-describedby="invite-hint" />
          <label htmlFor="invite-password">{t('invite.password')}</label>
          <input id="invite-password" name="password" type="password" autoComplete="new-password" required />
          <label htmlFor="invite-again">{t('invite.again')}</label>
          <input id="invite-again" name="again" type="password" autoComplete="new-password" required />
          <button className="primary" type="submit" disabled={busy || !token}>
            {t('invite.submit')}
          </button>
          {!token && <p className="error">{t('invite.noToken')}</p>}
          <FormError text={error} />
        </form>
      )}
    </PublicPage>
  )
}
