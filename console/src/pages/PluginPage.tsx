import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { lazy, Suspense, useState } from 'react'
import { useParams } from 'react-router'
import { pluginCall } from '../api/client'
import { can, useAuth } from '../auth'
import { Dialog } from '../components/Dialog'
import { format, ItemDetail } from '../components/ItemDetail'
import { t } from '../i18n'
import { applies, loadPluginScreens, routeUrl, type PluginScreens, type ScreenPage } from '../plugin-screens'

const SchemaForm = lazy(() => import('../components/TaskForm'))
type Item = Record<string, unknown>
type Action = NonNullable<ScreenPage['actions']>[number]

/** A page a plugin declared: its list (with filters), detail, create form and actions. */
export default function PluginPage() {
  const { me } = useAuth()
  const { mount = '', page: pageId = '' } = useParams()
  const screens = useQuery({
    queryKey: ['plugin-screens'],
    queryFn: () => loadPluginScreens(can(me, 'plugins.install')),
  })
  const s = screens.data?.find((x) => x.mount === mount)
  const page = s?.pages.find((p) => p.id === pageId)
  if (screens.error) return <p className="error">{t('app.error', { message: screens.error.message })}</p>
  if (!s || !page) return <p role="status">{t('app.loading')}</p>
  return <DeclaredPage key={`${mount}/${pageId}`} screens={s} page={page} />
}

function DeclaredPage({ screens, page }: { screens: PluginScreens; page: ScreenPage }) {
  const client = useQueryClient()
  const [filters, setFilters] = useState<Record<string, string>>({})
  const [open, setOpen] = useState<Item>()
  const [creating, setCreating] = useState(false)
  const [acting, setActing] = useState<{ action: Action; item: Item }>()
  const [notice, setNotice] = useState<string>()
  const key = page.list.key ?? 'id'
  const list = useInfiniteQuery({
    queryKey: ['plugin-list', screens.mount, page.id, filters],
    initialPageParam: undefined as string | undefined,
    queryFn: async ({ pageParam }) => {
      const { url } = routeUrl(screens.mount, page.list.route)
      const q = new URLSearchParams(Object.entries(filters).filter(([, v]) => v))
      if (pageParam) q.set('cursor', pageParam)
      const body = await pluginCall<Item[] | { items: Item[]; nextCursor?: string | null }>(
        'GET',
        `${url}${q.size ? `?${q}` : ''}`,
      )
      return Array.isArray(body)
        ? { items: body, nextCursor: null }
        : { items: body.items, nextCursor: body.nextCursor ?? null }
    },
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  })
  const detail = useQuery({
    queryKey: ['plugin-item', screens.mount, page.id, open?.[key]],
    enabled: !!open && !!page.detail,
    queryFn: () => {
      const { url } = routeUrl(screens.mount, page.detail!.route, open, key)
      return pluginCall<Item>('GET', url)
    },
  })
  const run = useMutation({
    mutationFn: ({ route, item, body }: { route: string; label: string; item?: Item; body?: unknown }) => {
      const { method, url } = routeUrl(screens.mount, route, item, key)
      return pluginCall(method, url, body)
    },
    onSuccess: (_, v) => {
      setNotice(t('plugin.done', { label: v.label, item: v.item ? String(v.item[key]) : '' }).trim())
      setCreating(false)
      setActing(undefined)
      setOpen(undefined)
      void client.invalidateQueries({ queryKey: ['plugin-list', screens.mount, page.id] })
      void client.invalidateQueries({ queryKey: ['plugin-item', screens.mount, page.id] })
      void client.invalidateQueries({ queryKey: ['tasks-about'] })
    },
  })
  const items = list.data?.pages.flatMap((p) => p.items) ?? []
  const shown = detail.data ?? open
  const form = (route: string): object | undefined => screens.bodies[route]
  return (
    <section aria-labelledby="plugin-page-title">
      <h1 id="plugin-page-title">{page.title}</h1>
      {notice && (
        <p className="status" role="status">
          {notice}
        </p>
      )}
      <div className="toolbar">
        {(page.list.filters ?? []).map((f) => (
          <div key={f.param}>
            <label htmlFor={`filter-${f.param}`}>{f.label}</label>
            {f.options ? (
              <select
                id={`filter-${f.param}`}
                value={filters[f.param] ?? ''}
                onChange={(e) => setFilters({ ...filters, [f.param]: e.target.value })}
              >
                <option value="">—</option>
                {f.options.map((o) => (
                  <option key={o}>{o}</option>
                ))}
              </select>
            ) : (
              <input
                id={`filter-${f.param}`}
                value={filters[f.param] ?? ''}
                onChange={(e) => setFilters({ ...filters, [f.param]: e.target.value })}
              />
            )}
          </div>
        ))}
        {page.create && (
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            {page.create.label}
          </button>
        )}
      </div>
      {list.error && <p className="error">{t('app.error', { message: list.error.message })}</p>}
      <table>
        <thead>
          <tr>
            {page.list.columns.map((c) => (
              <th key={c.field} scope="col">
                {c.label}
              </th>
            ))}
            <th scope="col">
              <span className="skip">{t('inbox.open')}</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {items.map((item) => (
            <tr key={String(item[key])}>
              {page.list.columns.map((c) => (
                <td key={c.field}>{format(item[c.field])}</td>
              ))}
              <td>
                <button type="button" className="secondary" onClick={() => setOpen(item)}>
                  {t('inbox.open')}
                  <span className="skip"> {String(item[key])}</span>
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.hasNextPage && (
        <button type="button" className="secondary" onClick={() => void list.fetchNextPage()}>
          {t('common.more')}
        </button>
      )}
      {open && shown && (
        <Dialog title={`${page.title}: ${String(open[key])}`} onClose={() => setOpen(undefined)}>
          <ItemDetail plugin={screens.plugin} detail={page.detail} item={shown} itemKey={key} />
          {run.error && (
            <p className="error" role="alert">
              {t('app.error', { message: run.error.message })}
            </p>
          )}
          <div className="actions">
            {(page.actions ?? [])
              .filter((a) => applies(a.when, shown))
              .map((a) => (
                <button
                  key={a.route}
                  type="button"
                  className="primary"
                  onClick={() => setActing({ action: a, item: shown })}
                >
                  {a.label}
                </button>
              ))}
          </div>
        </Dialog>
      )}
      {acting && (
        <Dialog title={acting.action.label} onClose={() => setActing(undefined)}>
          {acting.action.confirm && <p>{acting.action.confirm}</p>}
          {run.error && (
            <p className="error" role="alert">
              {t('app.error', { message: run.error.message })}
            </p>
          )}
          {form(acting.action.route) ? (
            <Suspense fallback={<p role="status">{t('app.loading')}</p>}>
              <SchemaForm
                schema={form(acting.action.route) ?? { type: 'object' }}
                submitLabel={t('common.confirm')}
                onSubmit={(body) =>
                  run.mutate({ route: acting.action.route, label: acting.action.label, item: acting.item, body })
                }
              />
            </Suspense>
          ) : (
            <button
              type="button"
              className="primary"
              onClick={() => run.mutate({ route: acting.action.route, label: acting.action.label, item: acting.item })}
            >
              {t('common.confirm')}
            </button>
          )}
        </Dialog>
      )}
      {creating && page.create && (
        <Dialog title={page.create.label} onClose={() => setCreating(false)}>
          {run.error && (
            <p className="error" role="alert">
              {t('app.error', { message: run.error.message })}
            </p>
          )}
          <Suspense fallback={<p role="status">{t('app.loading')}</p>}>
            <SchemaForm
              schema={form(page.create.route) ?? { type: 'object' }}
              submitLabel={page.create.label}
              onSubmit={(body) => run.mutate({ route: page.create!.route, label: page.create!.label, body })}
            />
          </Suspense>
        </Dialog>
      )}
    </section>
  )
}
