import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { api, call } from '../../api/client'
import { Outcome } from '../../components/Outcome'
import { t } from '../../i18n'

/**
 * A partner's channel catalog (tenants.manage): what its managed tenants may install — every
 * listed plugin, or only those it picks from the approved ones — and the name its tenants see
 * the marketplace under.
 */
export default function ChannelCatalog() {
  const client = useQueryClient()
  const [notice, setNotice] = useState<string>()
  const catalog = useQuery({ queryKey: ['catalog'], queryFn: () => call(() => api.GET('/v1/marketplace/catalog')) })
  // Every listed plugin, past the catalog itself (the partner chooses among them).
  const listed = useQuery({
    queryKey: ['plugins', 'uncurated'],
    queryFn: () =>
      call(() => api.GET('/v1/marketplace/plugins', { params: { query: { uncurated: true, limit: 200 } } })),
  })
  const [mode, setMode] = useState<'all' | 'allow_list'>()
  const save = useMutation({
    mutationFn: (body: { displayName: string; mode: 'all' | 'allow_list'; plugins: string[] }) =>
      call(() => api.PUT('/v1/marketplace/catalog', { body })),
    onSuccess: (c) => {
      client.setQueryData(['catalog'], c)
      setNotice(c.mode === 'all' ? t('catalog.savedAll') : t('catalog.savedList', { n: c.plugins.length }))
    },
  })
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const f = new FormData(e.currentTarget)
    const chosen = (f.get('mode') as 'all' | 'allow_list') ?? 'all'
    save.mutate({
      displayName: String(f.get('displayName') ?? '').trim(),
      mode: chosen,
      plugins: chosen === 'allow_list' ? f.getAll('plugins').map(String) : [],
    })
  }
  if (catalog.isPending || listed.isPending) return <p role="status">{t('app.loading')}</p>
  const current = catalog.data ?? undefined
  const shownMode = mode ?? current?.mode ?? 'all'
  const offered = new Set(current?.plugins ?? [])
  return (
    <section aria-labelledby="catalog-title">
      <h1 id="catalog-title">{t('catalog.title')}</h1>
      <p>{t('catalog.intro')}</p>
      <Outcome notice={notice} error={catalog.error ?? listed.error ?? save.error} />
      <form onSubmit={submit} key={JSON.stringify(current ?? {})}>
        <label htmlFor="catalog-name">{t('catalog.name')}</label>
        <input id="catalog-name" name="displayName" defaultValue={current?.displayName} maxLength={200} />
        <fieldset>
          <legend>{t('catalog.mode')}</legend>
          <label>
            <input type="radio" name="mode" value="all" checked={shownMode === 'all'} onChange={() => setMode('all')} />{' '}
            {t('catalog.all')}
          </label>
          <label>
            <input
              type="radio"
              name="mode"
              value="allow_list"
              checked={shownMode === 'allow_list'}
              onChange={() => setMode('allow_list')}
            />{' '}
            {t('catalog.allowList')}
          </label>
        </fieldset>
        {shownMode === 'allow_list' && (
          <fieldset>
            <legend>{t('catalog.plugins')}</legend>
            {(listed.data?.items ?? []).length === 0 && <p>{t('catalog.noneListed')}</p>}
            {(listed.data?.items ?? []).map((p) => (
              <label key={p.name}>
                <input type="checkbox" name="plugins" value={p.name} defaultChecked={offered.has(p.name)} /> {p.name}{' '}
                <span className="muted">
                  {p.version} — {p.description}
                </span>
              </label>
            ))}
          </fieldset>
        )}
        <div className="actions">
          <button type="submit" className="primary" disabled={save.isPending}>
            {t('catalog.save')}
          </button>
        </div>
      </form>
    </section>
  )
}
