import { useQuery } from '@tanstack/react-query'
import { lazy, Suspense } from 'react'
import { NavLink, Navigate, Route, Routes } from 'react-router'
import { can, type Me, useAuth } from './auth'
import { type MessageKey, t } from './i18n'
import { loadPluginScreens } from './plugin-screens'

const Inbox = lazy(() => import('./pages/Inbox'))
const Marketplace = lazy(() => import('./pages/Marketplace'))
const Installations = lazy(() => import('./pages/Installations'))
const Audit = lazy(() => import('./pages/Audit'))
const Reviews = lazy(() => import('./pages/Reviews'))
const Tenants = lazy(() => import('./pages/Tenants'))
const PluginPage = lazy(() => import('./pages/PluginPage'))
const Access = lazy(() => import('./pages/Access'))
const Account = lazy(() => import('./pages/Account'))
const Dashboards = lazy(() => import('./pages/Dashboards'))
const Platform = lazy(() => import('./pages/Platform'))
const AccessReview = lazy(() => import('./pages/GovernanceAccessReview'))
const Governance = lazy(() => import('./pages/GovernanceData'))
const Publishing = lazy(() => import('./pages/partner/Publishing'))
const ChannelCatalog = lazy(() => import('./pages/partner/ChannelCatalog'))
const SsoSettings = lazy(() => import('./pages/SsoSettings'))

/** The screens, each shown to whom it serves (by the caller's organisation kind and permissions). */
const SCREENS: Array<{ path: string; label: MessageKey; element: JSX.Element; shown: (me: Me) => boolean }> = [
  { path: 'inbox', label: 'nav.inbox', element: <Inbox />, shown: (me) => me.org.kind === 'tenant' },
  {
    path: 'marketplace',
    label: 'nav.marketplace',
    element: <Marketplace />,
    shown: (me) => me.org.kind === 'tenant' && can(me, 'plugins.install'),
  },
  {
    path: 'installations',
    label: 'nav.installations',
    element: <Installations />,
    shown: (me) => me.org.kind === 'tenant' && can(me, 'plugins.install'),
  },
  { path: 'platform', label: 'nav.platform', element: <Platform />, shown: (me) => me.org.kind === 'platform' },
  { path: 'reviews', label: 'nav.reviews', element: <Reviews />, shown: (me) => can(me, 'marketplace.review') },
  {
    path: 'tenants',
    label: 'nav.tenants',
    element: <Tenants />,
    shown: (me) => me.org.kind !== 'tenant' && can(me, 'tenants.read'),
  },
  {
    path: 'publishing',
    label: 'nav.publishing',
    element: <Publishing />,
    shown: (me) => me.org.kind === 'partner' && can(me, 'plugins.publish'),
  },
  {
    path: 'catalog',
    label: 'nav.catalog',
    element: <ChannelCatalog />,
    shown: (me) => me.org.kind === 'partner' && can(me, 'tenants.manage'),
  },
  {
    path: 'access',
    label: 'nav.access',
    element: <Access />,
    shown: (me) => can(me, 'users.read') || can(me, 'api_keys.manage') || can(me, 'webhooks.manage'),
  },
  {
    path: 'access-review',
    label: 'nav.accessReview',
    element: <AccessReview />,
    shown: (me) => me.org.kind === 'tenant' && can(me, 'users.manage'),
  },
  {
    path: 'governance',
    label: 'nav.governance',
    element: <Governance />,
    shown: (me) => me.org.kind === 'tenant' && can(me, 'governance.manage'),
  },
  { path: 'sso', label: 'nav.sso', element: <SsoSettings />, shown: (me) => can(me, 'users.manage') },
  { path: 'dashboards', label: 'nav.dashboards', element: <Dashboards />, shown: (me) => me.org.kind === 'tenant' },
  { path: 'audit', label: 'nav.audit', element: <Audit />, shown: (me) => can(me, 'audit.read') },
  { path: 'account', label: 'nav.account', element: <Account />, shown: () => true },
]

export default function Shell() {
  const { me, branding, signOut } = useAuth()
  const screens = SCREENS.filter((s) => s.shown(me))
  // Pages the installed plugins declare (manifest `console` section), for the caller's permissions.
  const plugins = useQuery({
    queryKey: ['plugin-screens'],
    enabled: me.org.kind === 'tenant',
    queryFn: () => loadPluginScreens(can(me, 'plugins.install')),
  })
  const pluginPages = (plugins.data ?? []).flatMap((s) =>
    s.pages.filter((p) => !p.permission || can(me, p.permission)).map((p) => ({ mount: s.mount, page: p })),
  )
  return (
    <div className="shell">
      <a className="skip" href="#content">
        {t('app.skip')}
      </a>
      <aside className="side">
        <div className="brand">
          {branding.logoUrl && <img src={branding.logoUrl} alt="" />}
          <span data-testid="brand-name">{branding.displayName ?? 'Trellis'}</span>
        </div>
        <nav aria-label={t('nav.label')}>
          {screens.map((s) => (
            <NavLink key={s.path} to={`/${s.path}`}>
              {t(s.label)}
            </NavLink>
          ))}
          {pluginPages.map(({ mount, page }) => (
            <NavLink key={`${mount}/${page.id}`} to={`/apps/${mount}/${page.id}`}>
              {page.title}
            </NavLink>
          ))}
          <button type="button" onClick={signOut}>
            {t('nav.signOut')}
          </button>
        </nav>
        <p>{t('nav.signedInAs', { email: me.user.email, org: me.org.name })}</p>
      </aside>
      <main id="content">
        <Suspense fallback={<p role="status">{t('app.loading')}</p>}>
          <Routes>
            {screens.map((s) => (
              <Route key={s.path} path={`/${s.path}/*`} element={s.element} />
            ))}
            <Route path="/apps/:mount/:page" element={<PluginPage />} />
            <Route path="*" element={screens[0] ? <Navigate to={`/${screens[0].path}`} replace /> : null} />
          </Routes>
        </Suspense>
      </main>
    </div>
  )
}
