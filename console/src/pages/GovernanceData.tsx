import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { api, call } from '../api/client'
import { Outcome } from '../components/Outcome'
import { t } from '../i18n'

const day = (iso: string | null | undefined) => (iso ? new Date(iso).toISOString().slice(0, 10) : '—')

/**
 * Data governance for a tenant's admins (governance.manage): how long each target is kept within
 * the platform's bounds, legal holds placed and released, and erasure of a data subject with the
 * reports of what was erased where. Everything goes through the governance API.
 */
export default function GovernanceData() {
  return (
    <>
      <h1>{t('gov.title')}</h1>
      <Retention />
      <LegalHolds />
      <Erasures />
    </>
  )
}

function Retention() {
  const client = useQueryClient()
  const [notice, setNotice] = useState<string>()
  const targets = useQuery({
    queryKey: ['retention'],
    queryFn: () => call(() => api.GET('/v1/governance/retention')),
  })
  const save = useMutation({
    mutationFn: (v: { target: string; days: number }) => call(() => api.PUT('/v1/governance/retention', { body: v })),
    onSuccess: (_, v) => {
      setNotice(t('gov.retentionSaved', { target: v.target, days: v.days }))
      void client.invalidateQueries({ queryKey: ['retention'] })
    },
  })
  function submit(e: FormEvent<HTMLFormElement>, target: string) {
    e.preventDefault()
    save.mutate({ target, days: Number(new FormData(e.currentTarget).get('days')) })
  }
  return (
    <section aria-labelledby="retention-title">
      <h2 id="retention-title">{t('gov.retention')}</h2>
      <Outcome notice={notice} error={save.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">{t('gov.target')}</th>
            <th scope="col">{t('gov.bounds')}</th>
            <th scope="col">{t('gov.applies')}</th>
            <th scope="col">{t('gov.yourDays')}</th>
          </tr>
        </thead>
        <tbody>
          {(targets.data?.items ?? []).map((r) => (
            <tr key={r.target}>
              <td>{r.target}</td>
              <td>{t('gov.boundsOf', { min: r.minDays ?? '0', max: r.maxDays ?? '∞' })}</td>
              <td>{r.effectiveDays === null ? t('gov.keptForever') : t('gov.days', { n: r.effectiveDays })}</td>
              <td>
                <form className="inline" onSubmit={(e) => submit(e, r.target)}>
                  <label className="skip" htmlFor={`days-${r.target}`}>
                    {t('gov.daysFor', { target: r.target })}
                  </label>
                  <input
                    id={`days-${r.target}`}
                    name="days"
                    type="number"
                    min={1}
                    required
                    defaultValue={r.days ?? ''}
                    key={r.days ?? 'none'}
                  />
                  <button type="submit" className="secondary">
                    {t('gov.save')}
                    <span className="skip"> {r.target}</span>
                  </button>
                </form>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}

function LegalHolds() {
  const client = useQueryClient()
  const holds = useQuery({
    queryKey: ['legal-holds'],
    queryFn: () => call(() => api.GET('/v1/governance/legal-holds')),
  })
  const place = useMutation({
    mutationFn: (body: { target?: string; reason: string }) =>
      call(() => api.POST('/v1/governance/legal-holds', { body })),
    onSuccess: () => void client.invalidateQueries({ queryKey: ['legal-holds'] }),
  })
  const release = useMutation({
    mutationFn: (id: string) =>
      call(() => api.POST('/v1/governance/legal-holds/{id}/release', { params: { path: { id } } })),
    onSuccess: () => void client.invalidateQueries({ queryKey: ['legal-holds'] }),
  })
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const form = e.currentTarget
    const f = new FormData(form)
    const target = String(f.get('target') ?? '').trim()
    place.mutate({ reason: String(f.get('reason')), ...(target ? { target } : {}) }, { onSuccess: () => form.reset() })
  }
  const error = place.error ?? release.error
  return (
    <section aria-labelledby="holds-title">
      <h2 id="holds-title">{t('gov.holds')}</h2>
      <form className="toolbar" onSubmit={submit}>
        <div>
          <label htmlFor="hold-target">{t('gov.holdTarget')}</label>
          <input id="hold-target" name="target" />
        </div>
        <div>
          <label htmlFor="hold-reason">{t('gov.holdReason')}</label>
          <input id="hold-reason" name="reason" required />
        </div>
        <button type="submit" className="primary" disabled={place.isPending}>
          {t('gov.placeHold')}
        </button>
      </form>
      <Outcome error={error} />
      <table>
        <thead>
          <tr>
            <th scope="col">{t('gov.holdOn')}</th>
            <th scope="col">{t('gov.holdReason')}</th>
            <th scope="col">{t('gov.placedOn')}</th>
            <th scope="col">{t('gov.holdState')}</th>
          </tr>
        </thead>
        <tbody>
          {(holds.data?.items ?? []).map((h) => (
            <tr key={h.id}>
              <td>{h.target ?? t('gov.wholeTenant')}</td>
              <td>{h.reason}</td>
              <td>{day(h.createdAt)}</td>
              <td>
                {h.releasedAt ? (
                  t('gov.releasedOn', { at: day(h.releasedAt) })
                ) : (
                  <button type="button" className="secondary" onClick={() => release.mutate(h.id)}>
                    {t('gov.release')}
                    <span className="skip"> {h.reason}</span>
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}

function Erasures() {
  const client = useQueryClient()
  const [notice, setNotice] = useState<string>()
  const reports = useQuery({
    queryKey: ['erasures'],
    queryFn: () => call(() => api.GET('/v1/governance/erasures')),
  })
  const erase = useMutation({
    mutationFn: (body: { subjectKind: string; identifier: string }) =>
      call(() => api.POST('/v1/governance/erasures', { body })),
    onSuccess: (r) => {
      setNotice(t('gov.erased', { n: r.plugins.reduce((n, p) => n + p.records.length, 0) }))
      void client.invalidateQueries({ queryKey: ['erasures'] })
    },
  })
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const form = e.currentTarget
    const f = new FormData(form)
    erase.mutate(
      { subjectKind: String(f.get('kind')), identifier: String(f.get('identifier')) },
      { onSuccess: () => form.reset() },
    )
  }
  return (
    <section aria-labelledby="erasure-title">
      <h2 id="erasure-title">{t('gov.erasure')}</h2>
      <p>{t('gov.erasureIntro')}</p>
      <form className="toolbar" onSubmit={submit}>
        <div>
          <label htmlFor="erase-kind">{t('gov.subjectKind')}</label>
          <input id="erase-kind" name="kind" required />
        </div>
        <div>
          <label htmlFor="erase-identifier">{t('gov.identifier')}</label>
          <input id="erase-identifier" name="identifier" required autoComplete="off" />
        </div>
        <button type="submit" className="primary" disabled={erase.isPending}>
          {t('gov.erase')}
        </button>
      </form>
      <Outcome notice={notice} error={erase.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">{t('gov.erasedOn')}</th>
            <th scope="col">{t('gov.subjectKind')}</th>
            <th scope="col">{t('gov.erasedWhere')}</th>
          </tr>
        </thead>
        <tbody>
          {(reports.data?.items ?? []).map((r) => (
            <tr key={r.id}>
              <td>{day(r.at)}</td>
              <td>{r.subjectKind}</td>
              <td>
                {r.plugins
                  .filter((p) => p.records.length)
                  .map((p) => t('gov.inCollection', { n: p.records.length, where: `${p.plugin}/${p.collection}` }))
                  .join('; ') || t('gov.nothingFound')}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}
