import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import type { FormEvent } from 'react'
import { api, call } from '../api/client'
import type { components } from '../api/schema'
import { t } from '../i18n'
import { manifestOf } from '../plugin-screens'

type Installation = components['schemas']['Installation']

/**
 * An installation's settings as its version's manifest declares them. Secret settings are
 * write-only: the kernel never answers their value, so their field starts empty, says whether a
 * value is kept, and replaces it only when something is typed.
 */
export function InstallationSettings(props: { installation: Installation; onSaved: () => void }) {
  const inst = props.installation
  const client = useQueryClient()
  const manifest = useQuery({
    queryKey: ['manifest', inst.plugin, inst.versionId],
    queryFn: () => manifestOf(inst.plugin, inst.versionId),
  })
  const save = useMutation({
    mutationFn: (settings: Record<string, unknown>) =>
      call(() => api.PATCH('/v1/installations/{id}', { params: { path: { id: inst.id } }, body: { settings } })),
    onSuccess: () => {
      void client.invalidateQueries({ queryKey: ['installations'] })
      props.onSaved()
    },
  })
  const fields = Object.entries(manifest.data?.settings?.properties ?? {})
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    const f = new FormData(e.currentTarget)
    const settings: Record<string, unknown> = {}
    for (const [name, s] of fields) {
      const raw = s.type === 'boolean' ? f.get(name) === 'on' : String(f.get(name) ?? '')
      if (s.secret) {
        if (raw !== '') settings[name] = raw
      } else if (raw === '') {
        if (inst.settings[name] !== undefined) settings[name] = null
      } else settings[name] = s.type === 'number' || s.type === 'integer' ? Number(raw) : raw
    }
    save.mutate(settings)
  }
  if (manifest.isPending) return <p role="status">{t('app.loading')}</p>
  if (!fields.length) return <p>{t('settings.none')}</p>
  return (
    <form onSubmit={submit}>
      {fields.map(([name, s]) => {
        const id = `setting-${name}`
        const kept = inst.secrets.includes(name)
        return (
          <div key={name}>
            <label htmlFor={id}>{s.title ?? name}</label>
            {s.type === 'boolean' ? (
              <input id={id} name={name} type="checkbox" defaultChecked={inst.settings[name] === true} />
            ) : s.secret ? (
              <input id={id} name={name} type="password" autoComplete="new-password" aria-describedby={`${id}-note`} />
            ) : (
              <input
                id={id}
                name={name}
                type={s.type === 'number' || s.type === 'integer' ? 'number' : 'text'}
                defaultValue={inst.settings[name] === undefined ? '' : String(inst.settings[name])}
              />
            )}
            {s.secret && (
              <p id={`${id}-note`} className="muted" data-testid={`${id}-note`}>
                {t(kept ? 'settings.secretKept' : 'settings.secretUnset')}
              </p>
            )}
            {s.description && <p className="muted">{s.description}</p>}
          </div>
        )
      })}
      {save.error && (
        <p className="error" role="alert">
          {t('app.error', { message: save.error.message })}
        </p>
      )}
      <div className="actions">
        <button type="submit" className="primary" disabled={save.isPending}>
          {t('settings.save')}
        </button>
      </div>
    </form>
  )
}
