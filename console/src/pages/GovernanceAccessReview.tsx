import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useState } from 'react'
import { api, call } from '../api/client'
import { Outcome } from '../components/Outcome'
import { t } from '../i18n'

type Decision = 'keep' | 'remove'

/**
 * The periodic access review, where a tenant's admins work: the open review's memberships and
 * API keys not used for its period, each kept or removed (removing ends the membership with its
 * sessions and keys, or revokes the key); decided items show who decided and when.
 */
export default function GovernanceAccessReview() {
  const client = useQueryClient()
  const [notice, setNotice] = useState<string>()
  const reviews = useQuery({
    queryKey: ['access-reviews'],
    queryFn: () => call(() => api.GET('/v1/governance/access-reviews')),
  })
  const decide = useMutation({
    mutationFn: (v: { review: string; itemId: string; decision: Decision; label: string }) =>
      call(() =>
        api.POST('/v1/governance/access-reviews/{id}/decisions', {
          params: { path: { id: v.review } },
          body: { decisions: [{ itemId: v.itemId, decision: v.decision }] },
        }),
      ),
    onSuccess: (review, v) => {
      setNotice(
        t(v.decision === 'keep' ? 'review.kept' : 'review.removed', { label: v.label }) +
          (review.status === 'completed' ? ` ${t('review.completed')}` : ''),
      )
      // The answer is the review as decided: shown at once, with the notice, then refetched.
      client.setQueryData(['access-reviews'], (old: typeof reviews.data) =>
        old ? { items: old.items.map((r) => (r.id === review.id ? review : r)) } : old,
      )
      void client.invalidateQueries({ queryKey: ['access-reviews'] })
    },
  })
  const open = reviews.data?.items.find((r) => r.status === 'open')
  const when = (iso: string | null) => (iso ? new Date(iso).toISOString().slice(0, 10) : t('review.never'))
  return (
    <section aria-labelledby="review-title">
      <h1 id="review-title">{t('review.title')}</h1>
      <Outcome notice={notice} error={decide.error ?? reviews.error} />
      {reviews.isSuccess && !open && <p>{t('review.none')}</p>}
      {open && (
        <>
          <p>{t('review.intro', { days: open.staleDays, due: when(open.dueAt) })}</p>
          <table>
            <thead>
              <tr>
                <th scope="col">{t('review.what')}</th>
                <th scope="col">{t('review.access')}</th>
                <th scope="col">{t('review.lastUsed')}</th>
                <th scope="col">{t('review.decision')}</th>
              </tr>
            </thead>
            <tbody>
              {open.items.map((i) => {
                const detail = (i.detail ?? {}) as { role?: string; permissions?: string[] }
                const kind = i.kind === 'membership' ? t('review.member') : t('review.key')
                return (
                  <tr key={i.id}>
                    <td>
                      {kind}: {i.label}
                    </td>
                    <td>{detail.role ?? (detail.permissions ?? []).join(', ')}</td>
                    <td>{when(i.lastUsedAt)}</td>
                    <td>
                      {i.decision
                        ? t(i.decision === 'keep' ? 'review.keptOn' : 'review.removedOn', { at: when(i.decidedAt) })
                        : (['keep', 'remove'] as const).map((d) => (
                            <button
                              key={d}
                              type="button"
                              className="secondary"
                              disabled={decide.isPending}
                              onClick={() =>
                                decide.mutate({ review: open.id, itemId: i.id, decision: d, label: i.label })
                              }
                            >
                              {t(d === 'keep' ? 'review.keep' : 'review.remove')}
                              <span className="skip"> {i.label}</span>
                            </button>
                          ))}
                    </td>
                  </tr>
                )
              })}
            </tbody>
          </table>
        </>
      )}
    </section>
  )
}
