import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { t } from '../i18n'
import { Dialog } from './Dialog'

export type Org = { id: string; name: string; slug: string; status: string }
export type NewOrg = { name: string; slug: string; admin: { email: string; name: string; password: string } }

/** What a kind of organisation (tenants, partners) offers the list: reading, creating, suspending. */
export interface OrgApi {
  kind: 'tenants' | 'partners'
  list(): Promise<{ items: Org[] }>
  create(body: NewOrg): Promise<Org>
  setStatus(id: string, action: 'suspend' | 'resume'): Promise<Org>
}

/**
 * Organisations the caller manages: the list with their status; for those who may, a form that
 * creates one with its first admin, and suspend (after a confirmation: all of its access stops
 * at once) or resume.
 */
export function Organisations(props: { orgs: OrgApi; manage: boolean }) {
  const { orgs, manage } = props
  const client = useQueryClient()
  const [notice, setNotice] = useState<string>()
  const [suspending, setSuspending] = useState<Org>()
  const list = useQuery({ queryKey: [orgs.kind], queryFn: () => orgs.list() })
  const done = (message: string) => {
    setNotice(message)
    void client.invalidateQueries({ queryKey: [orgs.kind] })
  }
  const create = useMutation({
    mutationFn: (body: NewOrg) => orgs.create(body),
    onSuccess: (x) => done(t('orgs.created', { name: x.name })),
  })
  const setStatus = useMutation({
    mutationFn: ({ org, action }: { org: Org; action: 'suspend' | 'resume' }) => orgs.setStatus(org.id, action),
    onSuccess: (x) => {
      setSuspending(undefined)
      done(t(x.status === 'suspended' ? 'orgs.suspended' : 'orgs.resumed', { name: x.name }))
    },
  })
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const form = e.currentTarget
    const f = new FormData(form)
    const v = (k: string) => String(f.get(k) ?? '')
    create.mutate(
      {
        name: v('name'),
        slug: v('slug'),
        admin: { email: v('adminEmail'), name: v('adminName'), password: v('adminPassword') },
      },
      { onSuccess: () => form.reset() },
    )
  }
  const error = create.error ?? setStatus.error
  const id = (field: string) => `${orgs.kind}-${field}`
  return (
    <>
      {notice && (
        <p className="status" role="status">
          {notice}
        </p>
      )}
      {error && !suspending && (
        <p className="error" role="alert">
          {t('app.error', { message: error.message })}
        </p>
      )}
      <table aria-label={t(orgs.kind === 'tenants' ? 'tenants.title' : 'partners.title')}>
        <thead>
          <tr>
            <th scope="col">{t('orgs.name')}</th>
            <th scope="col">{t('orgs.slug')}</th>
            <th scope="col">{t('orgs.status')}</th>
            {manage && (
              <th scope="col">
                <span className="skip">{t('orgs.actions')}</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {(list.data?.items ?? []).map((x) => (
            <tr key={x.id}>
              <td>{x.name}</td>
              <td className="muted">{x.slug}</td>
              <td>{x.status}</td>
              {manage && (
                <td>
                  {x.status === 'suspended' ? (
                    <button
                      type="button"
                      className="secondary"
                      onClick={() => setStatus.mutate({ org: x, action: 'resume' })}
                    >
                      {t('orgs.resume', { name: x.name })}
                    </button>
                  ) : (
                    <button type="button" className="secondary" onClick={() => setSuspending(x)}>
                      {t('orgs.suspend', { name: x.name })}
                    </button>
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {suspending && (
        <Dialog title={t('orgs.suspendTitle', { name: suspending.name })} onClose={() => setSuspending(undefined)}>
          <p>{t('orgs.suspendWarning')}</p>
          {setStatus.error && (
            <p className="error" role="alert">
              {t('app.error', { message: setStatus.error.message })}
            </p>
          )}
          <div className="actions">
            <button type="button" className="secondary" onClick={() => setSuspending(undefined)}>
              {t('common.cancel')}
            </button>
            <button
              type="button"
              className="primary"
              disabled={setStatus.isPending}
              onClick={() => setStatus.mutate({ org: suspending, action: 'suspend' })}
            >
              {t('orgs.suspendConfirm')}
            </button>
          </div>
        </Dialog>
      )}
      {manage && (
        <form onSubmit={submit}>
          <h2>{t(orgs.kind === 'tenants' ? 'tenants.new' : 'partners.new')}</h2>
          <label htmlFor={id('name')}>{t('orgs.name')}</label>
          <input id={id('name')} name="name" required maxLength={200} />
          <label htmlFor={id('slug')}>{t('orgs.slug')}</label>
          <input id={id('slug')} name="slug" required pattern="[a-z0-9][a-z0-9\-]*" />
          <label htmlFor={id('admin-email')}>{t('orgs.adminEmail')}</label>
          <input id={id('admin-email')} name="adminEmail" type="email" required />
          <label htmlFor={id('admin-name')}>{t('orgs.adminName')}</label>
          <input id={id('admin-name')} name="adminName" required />
          <label htmlFor={id('admin-password')}>{t('orgs.adminPassword')}</label>
          <input id={id('admin-password')} name="adminPassword" type="password" autoComplete="new-password" required />
          <div className="actions">
            <button type="submit" className="primary" disabled={create.isPending}>
              {t(orgs.kind === 'tenants' ? 'tenants.create' : 'partners.create')}
            </button>
          </div>
        </form>
      )}
    </>
  )
}
