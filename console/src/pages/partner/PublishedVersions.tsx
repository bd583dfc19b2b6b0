import { useQuery } from '@tanstack/react-query'
import { api, call } from '../../api/client'
import { type MessageKey, t } from '../../i18n'

type Check = { name?: string; status?: string; blocking?: boolean; details?: Record<string, unknown> }
type Review = { decision?: string; reason?: string; at?: string }

const STATUS: Record<string, MessageKey> = {
  checking: 'pub.status.checking',
  failed_checks: 'pub.status.failed_checks',
  in_review: 'pub.status.in_review',
  approved: 'pub.status.approved',
  rejected: 'pub.status.rejected',
  blocked: 'pub.status.blocked',
}

const day = (iso: string) => new Date(iso).toISOString().slice(0, 16).replace('T', ' ')

/** How the checks came out, in one line: "11 passed, 1 warning, 1 failed". */
function checkSummary(checks: Check[]): string {
  const n = (s: string) => checks.filter((c) => c.status === s).length
  return t('pub.checkSummary', { passed: n('passed'), warnings: n('warning'), failed: n('failed') })
}

/** What a check that did not pass says (its details, as the checks wrote them). */
const detailOf = (c: Check) => {
  const d = c.details ?? {}
  const text = d.reason ?? d.message ?? d.error
  return typeof text === 'string' ? text : Object.keys(d).length ? JSON.stringify(d) : ''
}

/** The publisher's newest 100 versions (one query shared by the versions table and the health section). */
export const usePublishedVersions = () =>
  useQuery({
    queryKey: ['published-versions'],
    queryFn: () => call(() => api.GET('/v1/marketplace/publisher/versions', { params: { query: { limit: 100 } } })),
  })

/** The reviewer's decision with its reason, and the kill switch's reason when the version was blocked since. */
function decisionOf(review: Review | null, blockedReason: string | null): string {
  const decided = review?.decision
    ? t(review.decision === 'approved' ? 'pub.reviewApproved' : 'pub.reviewRejected', { reason: review.reason ?? '' })
    : ''
  const blocked = blockedReason ? t('pub.blockedBecause', { reason: blockedReason }) : ''
  return [decided, blocked].filter(Boolean).join(' ')
}

/** The publisher's versions, every status, newest first: checks (each one on request) and the reviewer's decision. */
export function PublishedVersions() {
  const versions = usePublishedVersions()
  const items = versions.data?.items ?? []
  return (
    <section aria-labelledby="versions-title">
      <h2 id="versions-title">{t('pub.versions')}</h2>
      {versions.error && <p className="error">{t('app.error', { message: versions.error.message })}</p>}
      {versions.data && items.length === 0 && <p>{t('pub.noVersions')}</p>}
      {items.length > 0 && (
        <table data-testid="published-versions">
          <thead>
            <tr>
              <th scope="col">{t('pub.plugin')}</th>
              <th scope="col">{t('pub.version')}</th>
              <th scope="col">{t('pub.submitted')}</th>
              <th scope="col">{t('pub.state')}</th>
              <th scope="col">{t('pub.checks')}</th>
              <th scope="col">{t('pub.review')}</th>
            </tr>
          </thead>
          <tbody>
            {items.map((v) => {
              const checks = v.checks as Check[]
              const review = v.review as Review | null
              return (
                <tr key={v.id} data-testid={`version-${v.name}@${v.version}`}>
                  <td>{v.name}</td>
                  <td>{v.version}</td>
                  <td>{day(v.createdAt)}</td>
                  <td>{STATUS[v.status] ? t(STATUS[v.status]!) : v.status}</td>
                  <td>
                    <details>
                      <summary>{checks.length ? checkSummary(checks) : t('pub.checksPending')}</summary>
                      <ul>
                        {checks.map((c) => (
                          <li key={c.name}>
                            {c.name}: {c.status}
                            {c.status !== 'passed' && detailOf(c) ? ` — ${detailOf(c)}` : ''}
                          </li>
                        ))}
                      </ul>
                    </details>
                  </td>
                  <td>{decisionOf(review, v.blockedReason) || '—'}</td>
                </tr>
              )
            })}
          </tbody>
        </table>
      )}
    </section>
  )
}
