import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { api, call } from '../../api/client'
import { Dialog } from '../../components/Dialog'
import { Outcome } from '../../components/Outcome'
import { t } from '../../i18n'
import { PluginHealth } from './PluginHealth'
import { PublishedVersions } from './PublishedVersions'

/**
 * A publishing partner's page (plugins.publish): the scopes it publishes under, the Ed25519
 * keys its packages are signed with (registered, revoked), its versions with their check
 * results and review decisions, and its plugins' health across tenants.
 */
export default function Publishing() {
  return (
    <>
      <h1>{t('pub.title')}</h1>
      <Scopes />
      <SigningKeys />
      <PublishedVersions />
      <PluginHealth />
    </>
  )
}

function Scopes() {
  const client = useQueryClient()
  const [notice, setNotice] = useState<string>()
  const scopes = useQuery({ queryKey: ['scopes'], queryFn: () => call(() => api.GET('/v1/marketplace/scopes')) })
  const claim = useMutation({
    mutationFn: (scope: string) => call(() => api.POST('/v1/marketplace/scopes', { body: { scope } })),
    onSuccess: (s) => {
      setNotice(t('pub.scopeClaimed', { scope: s.scope }))
      void client.invalidateQueries({ queryKey: ['scopes'] })
    },
  })
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const form = e.currentTarget
    claim.mutate(String(new FormData(form).get('scope')).trim(), { onSuccess: () => form.reset() })
  }
  return (
    <section aria-labelledby="scopes-title">
      <h2 id="scopes-title">{t('pub.scopes')}</h2>
      <ul data-testid="scopes">
        {(scopes.data?.items ?? []).map((s) => (
          <li key={s.scope}>
            <code>{s.scope}</code>
          </li>
        ))}
      </ul>
      {scopes.data?.items.length === 0 && <p>{t('pub.noScope')}</p>}
      <form className="toolbar" onSubmit={submit}>
        <div>
          <label htmlFor="scope-name">{t('pub.scope')}</label>
          <input id="scope-name" name="scope" pattern="@[a-z0-9][a-z0-9\-]*" placeholder="@acme" required />
        </div>
        <button type="submit" className="primary" disabled={claim.isPending}>
          {t('pub.claim')}
        </button>
      </form>
      <Outcome notice={notice} error={claim.error} />
    </section>
  )
}

function SigningKeys() {
  const client = useQueryClient()
  const [notice, setNotice] = useState<string>()
  const [revoking, setRevoking] = useState<{ id: string; name: string }>()
  const keys = useQuery({ queryKey: ['signing-keys'], queryFn: () => call(() => api.GET('/v1/marketplace/keys')) })
  const refresh = () => void client.invalidateQueries({ queryKey: ['signing-keys'] })
  const register = useMutation({
    mutationFn: (body: { name: string; publicKey: string }) => call(() => api.POST('/v1/marketplace/keys', { body })),
    onSuccess: (k) => {
      setNotice(t('pub.keyRegistered', { name: k.name, fingerprint: k.fingerprint }))
      refresh()
    },
  })
  const revoke = useMutation({
    mutationFn: (id: string) => call(() => api.POST('/v1/marketplace/keys/{id}/revoke', { params: { path: { id } } })),
    onSuccess: (k) => {
      setRevoking(undefined)
      setNotice(t('pub.keyRevoked', { name: k.name }))
      refresh()
    },
  })
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const form = e.currentTarget
    const f = new FormData(form)
    register.mutate(
      { name: String(f.get('name')).trim(), publicKey: String(f.get('publicKey')).trim() },
      { onSuccess: () => form.reset() },
    )
  }
  return (
    <section aria-labelledby="keys-title">
      <h2 id="keys-title">{t('pub.keys')}</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">{t('pub.keyName')}</th>
            <th scope="col">{t('pub.fingerprint')}</th>
            <th scope="col">{t('pub.keyStatus')}</th>
            <th scope="col">
              <span className="sr-only">{t('pub.keyActions')}</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {(keys.data?.items ?? []).map((k) => (
            <tr key={k.id}>
              <td>{k.name}</td>
              <td>
                <code>{k.fingerprint}</code>
              </td>
              <td>{t(k.status === 'active' ? 'pub.keyActive' : 'pub.keyRevokedState')}</td>
              <td>
                {k.status === 'active' && (
                  <button type="button" className="secondary" onClick={() => setRevoking(k)}>
                    {t('pub.revoke')}
                    <span className="skip"> {k.name}</span>
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form onSubmit={submit}>
        <label htmlFor="key-name">{t('pub.keyName')}</label>
        <input id="key-name" name="name" required />
        <label htmlFor="key-pem">{t('pub.publicKey')}</label>
        <textarea
          id="key-pem"
          name="publicKey"
          rows={4}
          cols={64}
          required
          aria-describedby="key-pem-hint"
          spellCheck={false}
        />
        <p id="key-pem-hint" className="muted">
          {t('pub.publicKeyHint')}
        </p>
        <div className="actions">
          <button type="submit" className="primary" disabled={register.isPending}>
            {t('pub.register')}
          </button>
        </div>
      </form>
      <Outcome notice={notice} error={register.error ?? revoke.error} />
      {revoking && (
        <Dialog title={t('pub.revokeTitle', { name: revoking.name })} onClose={() => setRevoking(undefined)}>
          <p>{t('pub.revokeText')}</p>
          <button
            type="button"
            className="primary"
            onClick={() => revoke.mutate(revoking.id)}
            disabled={revoke.isPending}
          >
            {t('pub.revokeConfirm')}
          </button>
        </Dialog>
      )}
    </section>
  )
}
