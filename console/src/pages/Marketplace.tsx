import { useMutation, useQuery } from '@tanstack/react-query'
import { useState } from 'react'
import { Link, Route, Routes, useParams } from 'react-router'
import { api, call } from '../api/client'
import type { components } from '../api/schema'
import { Capabilities } from '../components/Capabilities'
import { Dialog } from '../components/Dialog'
import { t } from '../i18n'

type Plugin = components['schemas']['Plugin']

export default function Marketplace() {
  return (
    <Routes>
      <Route index element={<Listing />} />
      <Route path=":scope/:name" element={<PluginPage />} />
    </Routes>
  )
}

function Listing() {
  const [q, setQ] = useState('')
  const [category, setCategory] = useState('')
  const list = useQuery({
    queryKey: ['plugins', q, category],
    queryFn: () =>
      call(() =>
        api.GET('/v1/marketplace/plugins', {
          params: { query: { q: q || undefined, category: category || undefined, limit: 100 } },
        }),
      ),
  })
  const all = useQuery({
    queryKey: ['plugins'],
    queryFn: () => call(() => api.GET('/v1/marketplace/plugins', { params: { query: { limit: 100 } } })),
  })
  const categories = [...new Set((all.data?.items ?? []).flatMap((p) => p.categories))].sort()
  return (
    <section aria-labelledby="market-title">
      <h1 id="market-title">{list.data?.catalog?.displayName ?? t('market.title')}</h1>
      <div className="toolbar">
        <div>
          <label htmlFor="market-q">{t('common.search')}</label>
          <input id="market-q" type="search" value={q} onChange={(e) => setQ(e.target.value)} />
        </div>
        <div>
          <label htmlFor="market-cat">{t('market.category')}</label>
          <select id="market-cat" value={category} onChange={(e) => setCategory(e.target.value)}>
            <option value="">{t('market.allCategories')}</option>
            {categories.map((c) => (
              <option key={c}>{c}</option>
            ))}
          </select>
        </div>
      </div>
      {list.error && <p className="error">{t('app.error', { message: list.error.message })}</p>}
      <ul className="cards" aria-label={t('market.title')}>
        {(list.data?.items ?? []).map((p) => (
          <li key={p.name} className="card">
            <h2>
              <Link to={p.name.slice(1)}>{p.name}</Link>
            </h2>
            <p>{p.description}</p>
            <p className="muted">
              {t('market.publisher', { name: p.publisher.name ?? '—' })} · {p.version} ·{' '}
              {t('market.installs', { n: p.installs })}
            </p>
          </li>
        ))}
      </ul>
    </section>
  )
}

function PluginPage() {
  const { scope = '', name = '' } = useParams()
  const [installing, setInstalling] = useState<{ version: string; capabilities: string[] }>()
  const [notice, setNotice] = useState<string>()
  const plugin = useQuery({
    queryKey: ['plugin', scope, name],
    queryFn: () =>
      call(() => api.GET('/v1/marketplace/plugins/{scope}/{name}', { params: { path: { scope: `@${scope}`, name } } })),
  })
  const install = useMutation({
    mutationFn: (v: { version: string; capabilities: string[] }) =>
      call(() =>
        api.POST('/v1/installations', {
          body: { plugin: `@${scope}/${name}`, version: v.version, capabilities: v.capabilities },
        }),
      ),
    onSuccess: (inst) => {
      setInstalling(undefined)
      setNotice(t('market.installed', { name: inst.plugin, version: inst.version }))
    },
  })
  if (plugin.error) return <p className="error">{t('app.error', { message: plugin.error.message })}</p>
  if (!plugin.data) return <p role="status">{t('app.loading')}</p>
  const p = plugin.data as Plugin & { versions: components['schemas']['Version'][] }
  const latest = p.versions.find((v) => v.version === p.version) ?? p.versions[0]
  return (
    <article aria-labelledby="plugin-title">
      <h1 id="plugin-title">{p.name}</h1>
      <p>{p.description}</p>
      <p className="muted">{t('market.publisher', { name: p.publisher.name ?? '—' })}</p>
      {notice && (
        <p className="status" role="status">
          {notice}
        </p>
      )}
      <h2>{t('market.capabilities')}</h2>
      <Capabilities list={p.capabilities} />
      <button
        type="button"
        className="primary"
        onClick={() => setInstalling({ version: p.version, capabilities: latest?.capabilities ?? p.capabilities })}
      >
        {t('market.install', { version: p.version })}
      </button>
      <h2>{t('market.versions')}</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">{t('market.versions')}</th>
            <th scope="col">{t('market.changelog')}</th>
          </tr>
        </thead>
        <tbody>
          {p.versions.map((v) => (
            <tr key={v.id}>
              <td>
                {v.version} <span className="muted">({v.status})</span>
              </td>
              <td>{v.changelog}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {installing && (
        <Dialog
          title={t('market.consentTitle', { name: p.name, version: installing.version })}
          onClose={() => setInstalling(undefined)}
        >
          <p>{t('market.consentIntro')}</p>
          <Capabilities list={installing.capabilities} />
          {install.error && (
            <p className="error" role="alert">
              {t('app.error', { message: install.error.message })}
            </p>
          )}
          <button
            type="button"
            className="primary"
            disabled={install.isPending}
            onClick={() => install.mutate(installing)}
          >
            {t('market.consentAccept')}
          </button>
        </Dialog>
      )}
    </article>
  )
}
