import { useEffect, useState } from 'react'
import { exchangeSsoCode } from '../api/client'
import type { Branding } from '../branding'
import { t } from '../i18n'

/** Where single sign-on returns: the URL fragment's one-time code (or the kernel's error code), read once. */
function takeFragment(): URLSearchParams {
  const fragment = new URLSearchParams(location.hash.slice(1))
  // The code works once; it leaves the address bar and the history at once.
  history.replaceState(null, '', location.pathname)
  return fragment
}

/** The kernel's callback names what failed by its error code; the reason is in the organisation's audit log. */
const REASONS: Record<string, Parameters<typeof t>[0]> = {
  AUTH_ERR_SSO_FAILED: 'sso.refused',
  AUTH_ERR_ACCOUNT_DISABLED: 'sso.disabled',
  AUTH_ERR_SSO_NOT_CONFIGURED: 'sso.notConfigured',
}

let handover: Promise<void> | undefined

/**
 * The console's end of single sign-on: the kernel's callback sends the browser here with
 * `#sso_code=…` (exchanged by POST for a session whose refresh token goes into the HttpOnly
 * cookie) or `#sso_error=<code>`. Signed in, the browser moves on to the console's start page.
 */
export function SsoCallback(props: { branding: Branding; onSignedIn: () => Promise<void> }) {
  const [error, setError] = useState<string>()
  useEffect(() => {
    handover ??= (async () => {
      const fragment = takeFragment()
      const failed = fragment.get('sso_error')
      const code = fragment.get('sso_code')
      if (failed) throw new Error(REASONS[failed] ? t(REASONS[failed]) : failed)
      if (!code) throw new Error(t('sso.noCode'))
      await exchangeSsoCode(code)
      history.replaceState(null, '', '/console/')
    })()
    handover.then(props.onSignedIn, (err: Error) => setError(t('sso.failed', { message: err.message })))
  }, [props.onSignedIn])
  return (
    <main className="login">
      {props.branding.logoUrl && <img src={props.branding.logoUrl} alt="" height={40} />}
      <h1>{t('sso.title')}</h1>
      {error ? (
        <>
          <p className="error" role="alert">
            {error}
          </p>
          <p>
            <a href="/console/">{t('sso.back')}</a>
          </p>
        </>
      ) : (
        <p role="status">{t('sso.working')}</p>
      )}
    </main>
  )
}
