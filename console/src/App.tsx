import { QueryClient, QueryClientProvider } from '@tanstack/react-query'
import { lazy, Suspense, useCallback, useEffect, useState } from 'react'
import { BrowserRouter } from 'react-router'
import { call, api, refresh, session, signOut } from './api/client'
import { AuthContext, type Me } from './auth'
import { applyBranding, type Branding, loadBranding } from './branding'
import { t } from './i18n'
import { Login } from './pages/Login'

// Everything past the sign-in page loads on demand: the login page's JavaScript stays small.
const loadShell = () => import('./Shell')
const Shell = lazy(loadShell)
// A returning browser (it holds the session's CSRF cookie) fetches the shell while it signs in again.
if (/(?:^|; )trellis_csrf=/.test(document.cookie)) void loadShell()
const ForgotPassword = lazy(() => import('./pages/PasswordReset').then((m) => ({ default: m.ForgotPassword })))
const ResetPassword = lazy(() => import('./pages/PasswordReset').then((m) => ({ default: m.ResetPassword })))
const AcceptInvitation = lazy(() => import('./pages/AcceptInvitation').then((m) => ({ default: m.AcceptInvitation })))
const SsoCallback = lazy(() => import('./pages/SsoCallback').then((m) => ({ default: m.SsoCallback })))
const SSO_CALLBACK = '/console/sso-callback'
/** Pages for people who are not signed in (the reset and invitation links in e-mails land on the last two). */
const PUBLIC: Record<string, typeof ForgotPassword> = {
  '/console/forgot-password': ForgotPassword,
  '/console/reset-password': ResetPassword,
  '/console/accept-invitation': AcceptInvitation,
}

const queries = new QueryClient({ defaultOptions: { queries: { retry: false, staleTime: 5_000 } } })

type Boot =
  | { state: 'loading' }
  | { state: 'out'; branding: Branding }
  | { state: 'public'; branding: Branding }
  | { state: 'sso'; branding: Branding }
  | { state: 'in'; me: Me; branding: Branding }

export function App() {
  const [boot, setBoot] = useState<Boot>({ state: 'loading' })
  const enter = useCallback(async () => {
    const [me, branding] = await Promise.all([
      call(() => api.GET('/v1/me')) as Promise<Me>,
      loadBranding(session.token),
    ])
    applyBranding(branding)
    setBoot({ state: 'in', me, branding })
  }, [])
  const leave = useCallback(async () => {
    await signOut()
    queries.clear()
    const branding = await loadBranding()
    applyBranding(branding)
    setBoot({ state: 'out', branding })
  }, [])
  useEffect(() => {
    ;(async () => {
      if (PUBLIC[location.pathname.replace(/\/$/, '')]) {
        const branding = await loadBranding()
        applyBranding(branding)
        return setBoot({ state: 'public', branding })
      }
      if (location.pathname.replace(/\/$/, '') === SSO_CALLBACK) {
        const branding = await loadBranding()
        applyBranding(branding)
        return setBoot({ state: 'sso', branding })
      }
      if (await refresh()) return enter()
      const branding = await loadBranding()
      applyBranding(branding)
      setBoot({ state: 'out', branding })
    })().catch(() => setBoot({ state: 'out', branding: {} }))
  }, [enter])

  if (boot.state === 'loading') return <p role="status">{t('app.loading')}</p>
  if (boot.state === 'out') return <Login branding={boot.branding} onSignedIn={enter} />
  if (boot.state === 'sso')
    return (
      <Suspense fallback={<p role="status">{t('app.loading')}</p>}>
        <SsoCallback branding={boot.branding} onSignedIn={enter} />
      </Suspense>
    )
  const Public = boot.state === 'public' ? PUBLIC[location.pathname.replace(/\/$/, '')] : undefined
  if (boot.state === 'public' && Public)
    return (
      <Suspense fallback={<p role="status">{t('app.loading')}</p>}>
        <Public branding={boot.branding} />
      </Suspense>
    )
  if (boot.state !== 'in') return null
  return (
    <QueryClientProvider client={queries}>
      <AuthContext.Provider value={{ me: boot.me, branding: boot.branding, signOut: leave }}>
        <BrowserRouter basename="/console">
          <Suspense fallback={<p role="status">{t('app.loading')}</p>}>
            <Shell />
          </Suspense>
        </BrowserRouter>
      </AuthContext.Provider>
    </QueryClientProvider>
  )
}
