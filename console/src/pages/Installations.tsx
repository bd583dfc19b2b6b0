import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useState } from 'react'
import { api, call } from '../api/client'
import type { components } from '../api/schema'
import { Capabilities } from '../components/Capabilities'
import { Dialog } from '../components/Dialog'
import { InstallationSettings } from '../components/InstallationSettings'
import { t } from '../i18n'

type Installation = components['schemas']['Installation']

export default function Installations() {
  const client = useQueryClient()
  const [reconsent, setReconsent] = useState<Installation>()
  const [removing, setRemoving] = useState<Installation>()
  const [keepData, setKeepData] = useState(true)
  const [configuring, setConfiguring] = useState<Installation>()
  const [notice, setNotice] = useState<string>()
  const list = useQuery({
    queryKey: ['installations'],
    queryFn: () => call(() => api.GET('/v1/installations', { params: { query: { limit: 100 } } })),
  })
  const done = () => void client.invalidateQueries({ queryKey: ['installations'] })
  const consent = useMutation({
    mutationFn: (i: Installation) => {
      const caps = [...i.capabilities.filter((c) => !i.pendingUpgrade?.capabilities.removed.includes(c))]
      caps.push(...(i.pendingUpgrade?.capabilities.added ?? []))
      return call(() =>
        api.POST('/v1/installations/{id}/consent', { params: { path: { id: i.id } }, body: { capabilities: caps } }),
      )
    },
    onSuccess: () => {
      setReconsent(undefined)
      done()
    },
  })
  const rollback = useMutation({
    mutationFn: (i: Installation) =>
      call(() => api.POST('/v1/installations/{id}/rollback', { params: { path: { id: i.id } }, body: {} })),
    onSuccess: done,
  })
  const uninstall = useMutation({
    mutationFn: (i: Installation) =>
      call(() => api.DELETE('/v1/installations/{id}', { params: { path: { id: i.id }, query: { keepData } } })),
    onSuccess: () => {
      setRemoving(undefined)
      done()
    },
  })
  const error = list.error ?? rollback.error
  return (
    <section aria-labelledby="inst-title">
      <h1 id="inst-title">{t('inst.title')}</h1>
      {error && (
        <p className="error" role="alert">
          {t('app.error', { message: error.message })}
        </p>
      )}
      {notice && (
        <p className="status" role="status">
          {notice}
        </p>
      )}
      <ul className="cards" aria-label={t('inst.title')}>
        {(list.data?.items ?? []).map((i) => {
          const previous = i.history[i.history.length - 1]
          return (
            <li key={i.id} className="card" data-testid={`installation-${i.plugin}`}>
              <h2>{i.plugin}</h2>
              <p>{t('inst.version', { version: i.version })}</p>
              {i.pendingUpgrade && (
                <>
                  <p className="overdue">{t('inst.pending', { version: i.pendingUpgrade.version })}</p>
                  <button type="button" className="primary" onClick={() => setReconsent(i)}>
                    {t('inst.reconsent')}
                  </button>{' '}
                </>
              )}
              {previous && (
                <button type="button" className="secondary" onClick={() => rollback.mutate(i)}>
                  {t('inst.rollback', { version: previous.version })}
                </button>
              )}{' '}
              <button
                type="button"
                className="secondary"
                onClick={() => {
                  // A notice of an earlier save must not stand for the next one.
                  setNotice(undefined)
                  setConfiguring(i)
                }}
              >
                {t('settings.open')}
                <span className="skip"> {i.plugin}</span>
              </button>{' '}
              <button type="button" className="secondary" onClick={() => setRemoving(i)}>
                {t('inst.uninstall')}
              </button>
            </li>
          )
        })}
      </ul>
      {reconsent?.pendingUpgrade && (
        <Dialog
          title={t('inst.reconsentTitle', { name: reconsent.plugin, version: reconsent.pendingUpgrade.version })}
          onClose={() => setReconsent(undefined)}
        >
          <Capabilities
            list={reconsent.pendingUpgrade.capabilities.added}
            prefix={(c) => t('inst.added', { cap: c })}
          />
          <Capabilities
            list={reconsent.pendingUpgrade.capabilities.removed}
            prefix={(c) => t('inst.removed', { cap: c })}
          />
          {consent.error && (
            <p className="error" role="alert">
              {t('app.error', { message: consent.error.message })}
            </p>
          )}
          <button type="button" className="primary" onClick={() => consent.mutate(reconsent)}>
            {t('inst.reconsentAccept')}
          </button>
        </Dialog>
      )}
      {configuring && (
        <Dialog title={t('settings.title', { name: configuring.plugin })} onClose={() => setConfiguring(undefined)}>
          <InstallationSettings
            installation={configuring}
            onSaved={() => {
              setConfiguring(undefined)
              setNotice(t('settings.saved', { name: configuring.plugin }))
            }}
          />
        </Dialog>
      )}
      {removing && (
        <Dialog title={t('inst.uninstallTitle', { name: removing.plugin })} onClose={() => setRemoving(undefined)}>
          <label>
            <input type="checkbox" checked={keepData} onChange={(e) => setKeepData(e.target.checked)} />{' '}
            {t('inst.keepData')}
          </label>
          {uninstall.error && (
            <p className="error" role="alert">
              {t('app.error', { message: uninstall.error.message })}
            </p>
          )}
          <button type="button" className="primary" onClick={() => uninstall.mutate(removing)}>
            {t('common.confirm')}
          </button>
        </Dialog>
      )}
    </section>
  )
}
