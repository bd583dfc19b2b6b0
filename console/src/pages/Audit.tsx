import { useInfiniteQuery, useMutation } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { api, call } from '../api/client'
import { t } from '../i18n'

/**
 * The audit trail with filters; each entry shows whether the sealer has chained it yet (its seq
 * and hash), and the chain's verification — intact up to its head, or its first broken link.
 */
export default function Audit() {
  const [filter, setFilter] = useState<{ action?: string; actor?: string }>({})
  const q = useInfiniteQuery({
    queryKey: ['audit', filter],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) =>
      call(() => api.GET('/v1/audit', { params: { query: { ...filter, limit: 100, cursor: pageParam } } })),
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  })
  const entries = q.data?.pages.flatMap((p) => p.items) ?? []
  const sealed = entries.filter((e) => e.hash).length
  // The whole chain recomputed by the kernel, when asked (it reads every entry).
  const verify = useMutation({ mutationFn: () => call(() => api.GET('/v1/audit/verify')) })
  const report = verify.data
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const f = new FormData(e.currentTarget)
    setFilter({ action: String(f.get('action')) || undefined, actor: String(f.get('actor')) || undefined })
  }
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">{t('audit.title')}</h1>
      <form className="toolbar" onSubmit={submit}>
        <div>
          <label htmlFor="audit-action">{t('audit.action')}</label>
          <input id="audit-action" name="action" />
        </div>
        <div>
          <label htmlFor="audit-actor">{t('audit.actor')}</label>
          <input id="audit-actor" name="actor" />
        </div>
        <button type="submit" className="primary">
          {t('audit.filter')}
        </button>
      </form>
      <div className="toolbar">
        <p data-testid="chain-status">{t('audit.chain', { status: `${sealed}/${entries.length} sealed` })}</p>
        <button type="button" className="secondary" onClick={() => verify.mutate()} disabled={verify.isPending}>
          {t('audit.verify')}
        </button>
      </div>
      <div aria-live="polite">
        {report?.ok && (
          <p className="status" data-testid="chain-verified">
            {t('audit.intact', {
              n: report.entries,
              seq: report.head?.seq ?? '0',
              hash: report.head?.hash.slice(0, 12) ?? '—',
            })}
            {report.unsealed > 0 && ` ${t('audit.pending', { n: report.unsealed })}`}
          </p>
        )}
        {report && !report.ok && (
          <p className="error" role="alert" data-testid="chain-verified">
            {t('audit.broken', { seq: report.brokenAt?.seq ?? '?', reason: report.brokenAt?.reason ?? '' })}
          </p>
        )}
        {verify.error && (
          <p className="error" role="alert">
            {t('app.error', { message: verify.error.message })}
          </p>
        )}
      </div>
      {q.error && <p className="error">{t('app.error', { message: q.error.message })}</p>}
      <table>
        <thead>
          <tr>
            <th scope="col">{t('audit.when')}</th>
            <th scope="col">{t('audit.who')}</th>
            <th scope="col">{t('audit.what')}</th>
            <th scope="col">{t('audit.target')}</th>
            <th scope="col">#</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr key={e.id}>
              <td>{new Date(e.at).toLocaleString()}</td>
              <td>
                {e.actor.kind}: {e.actor.id}
              </td>
              <td>{e.action}</td>
              <td>{e.target ? `${e.target.kind} ${e.target.id ?? ''}` : ''}</td>
              <td>{e.seq ? t('audit.sealed', { seq: e.seq }) : t('audit.unsealed')}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {q.hasNextPage && (
        <button type="button" className="secondary" onClick={() => void q.fetchNextPage()}>
          {t('common.more')}
        </button>
      )}
    </section>
  )
}
