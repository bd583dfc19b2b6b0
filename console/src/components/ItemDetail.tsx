import { useQuery } from '@tanstack/react-query'
import { api, call } from '../api/client'
import { t } from '../i18n'
import type { ScreenPage } from '../plugin-screens'

type Item = Record<string, unknown>
type Detail = NonNullable<ScreenPage['detail']>

/** A value in a cell: objects as JSON, lists by their length. */
export function format(v: unknown): string {
  if (v === null || v === undefined) return ''
  if (typeof v === 'object') return Array.isArray(v) ? `${v.length}` : JSON.stringify(v)
  return String(v)
}

/**
 * One item of a plugin's page as its manifest declares the detail: the fields with their labels,
 * array fields as tables, and the tasks the plugin's workflows opened about it (their state,
 * from GET /v1/tasks/about). Without declared fields or tables the item is shown as JSON.
 */
export function ItemDetail(props: { plugin: string; detail?: Detail; item: Item; itemKey: string }) {
  const { detail, item } = props
  const subject = String(item[props.itemKey] ?? '')
  const tasks = useQuery({
    queryKey: ['tasks-about', props.plugin, detail?.tasks?.field, subject],
    enabled: !!detail?.tasks && !!subject,
    queryFn: () =>
      call(() =>
        api.GET('/v1/tasks/about', {
          params: { query: { plugin: props.plugin, field: detail!.tasks!.field, value: subject } },
        }),
      ),
  })
  if (!detail?.fields && !detail?.tables) return <pre data-testid="plugin-item">{JSON.stringify(item, null, 2)}</pre>
  return (
    <div data-testid="plugin-item">
      {detail.fields && (
        <dl className="fields">
          {detail.fields.map((f) => (
            <div key={f.field}>
              <dt>{f.label}</dt>
              <dd>{format(item[f.field])}</dd>
            </div>
          ))}
        </dl>
      )}
      {(detail.tables ?? []).map((tbl) => {
        const rows = Array.isArray(item[tbl.field]) ? (item[tbl.field] as Item[]) : []
        return (
          <table key={tbl.field} aria-label={tbl.label}>
            <caption>{tbl.label}</caption>
            <thead>
              <tr>
                {tbl.columns.map((c) => (
                  <th key={c.field} scope="col">
                    {c.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.length === 0 && (
                <tr>
                  <td colSpan={tbl.columns.length}>{t('common.none')}</td>
                </tr>
              )}
              {rows.map((row, i) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: the rows of one fetched item have no id and never reorder
                <tr key={i}>
                  {tbl.columns.map((c) => (
                    <td key={c.field}>{format(row[c.field])}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        )
      })}
      {detail.tasks && (
        <table aria-label={detail.tasks.label}>
          <caption>{detail.tasks.label}</caption>
          <thead>
            <tr>
              <th scope="col">{t('tasks.task')}</th>
              <th scope="col">{t('tasks.role')}</th>
              <th scope="col">{t('tasks.state')}</th>
              <th scope="col">{t('tasks.due')}</th>
            </tr>
          </thead>
          <tbody>
            {tasks.error && (
              <tr>
                <td colSpan={4} className="error">
                  {t('app.error', { message: tasks.error.message })}
                </td>
              </tr>
            )}
            {tasks.data?.items.length === 0 && (
              <tr>
                <td colSpan={4}>{t('common.none')}</td>
              </tr>
            )}
            {tasks.data?.items.map((task) => (
              <tr key={task.id}>
                <td>{task.title}</td>
                <td>{task.role ?? ''}</td>
                <td>
                  {task.outcome ? t('tasks.decided', { status: task.status, outcome: task.outcome }) : task.status}
                </td>
                <td>{task.dueAt ? new Date(task.dueAt).toLocaleString() : t('inbox.noSla')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  )
}
