import { useInfiniteQuery, useMutation, useQueryClient } from '@tanstack/react-query'
import { useVirtualizer } from '@tanstack/react-virtual'
import { lazy, Suspense, useMemo, useRef, useState } from 'react'
import { api, call } from '../api/client'
import type { components } from '../api/schema'
import { Dialog } from '../components/Dialog'
import { t } from '../i18n'

type Task = components['schemas']['Task']
const TaskForm = lazy(() => import('../components/TaskForm'))
const ROW = 48

function sla(task: Task, now: number): { text: string; overdue: boolean } {
  if (!task.dueAt) return { text: t('inbox.noSla'), overdue: false }
  const when = new Date(task.dueAt).toLocaleString()
  return new Date(task.dueAt).getTime() < now
    ? { text: t('inbox.overdue', { when }), overdue: true }
    : { text: t('inbox.due', { when }), overdue: false }
}

/** The task inbox: pages of 200 (the API's most) fetched as the list scrolls, rows virtualised (only visible ones exist). */
export default function Inbox() {
  const [status, setStatus] = useState<'active' | 'completed'>('active')
  const [open, setOpen] = useState<Task>()
  const [notice, setNotice] = useState<string>()
  const q = useInfiniteQuery({
    queryKey: ['tasks', status],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) =>
      call(() => api.GET('/v1/tasks', { params: { query: { status, limit: 200, cursor: pageParam } } })),
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  })
  const tasks = useMemo(() => q.data?.pages.flatMap((p) => p.items) ?? [], [q.data])
  const scroller = useRef<HTMLDivElement>(null)
  const rows = useVirtualizer({
    count: tasks.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW,
    overscan: 10,
  })
  const items = rows.getVirtualItems()
  const last = items[items.length - 1]
  if (last && last.index >= tasks.length - 20 && q.hasNextPage && !q.isFetchingNextPage) void q.fetchNextPage()
  const now = Date.now()
  return (
    <section aria-labelledby="inbox-title">
      <h1 id="inbox-title">{t('inbox.title')}</h1>
      <div className="toolbar">
        <div>
          <label htmlFor="inbox-status">{t('inbox.status')}</label>
          <select id="inbox-status" value={status} onChange={(e) => setStatus(e.target.value as typeof status)}>
            <option value="active">active</option>
            <option value="completed">completed</option>
          </select>
        </div>
        <p className="muted" data-testid="task-count">
          {t('inbox.count', { n: tasks.length })}
        </p>
      </div>
      {notice && (
        <p className="status" role="status">
          {notice}
        </p>
      )}
      {q.error && <p className="error">{t('app.error', { message: q.error.message })}</p>}
      <div className="list" ref={scroller} data-testid="task-list">
        <ul
          aria-label={t('inbox.title')}
          style={{ height: rows.getTotalSize(), position: 'relative', margin: 0, padding: 0, listStyle: 'none' }}
        >
          {items.map((row) => {
            const task = tasks[row.index]
            const s = sla(task, now)
            return (
              <li
                key={task.id}
                className="row"
                style={{
                  position: 'absolute',
                  top: 0,
                  left: 0,
                  right: 0,
                  height: ROW,
                  transform: `translateY(${row.start}px)`,
                }}
              >
                <span className="grow">{task.title}</span>
                <span className={s.overdue ? 'overdue' : 'muted'}>{s.text}</span>
                <span className="muted">{task.status}</span>
                <button type="button" className="secondary" onClick={() => setOpen(task)}>
                  {t('inbox.open')}
                  <span className="skip"> {task.title}</span>
                </button>
              </li>
            )
          })}
        </ul>
      </div>
      {open && (
        <TaskDialog
          task={open}
          onClose={() => setOpen(undefined)}
          onDone={(outcome) => {
            setOpen(undefined)
            setNotice(t('inbox.done', { outcome }))
          }}
        />
      )}
    </section>
  )
}

function TaskDialog(props: { task: Task; onClose: () => void; onDone: (outcome: string) => void }) {
  const client = useQueryClient()
  const [task, setTask] = useState(props.task)
  const [outcome, setOutcome] = useState(task.outcomes[0] ?? '')
  const claim = useMutation({
    mutationFn: () => call(() => api.POST('/v1/tasks/{id}/claim', { params: { path: { id: task.id } } })),
    onSuccess: (t) => setTask(t),
  })
  const complete = useMutation({
    mutationFn: (data: Record<string, unknown>) =>
      call(() => api.POST('/v1/tasks/{id}/complete', { params: { path: { id: task.id } }, body: { outcome, data } })),
    onSuccess: () => {
      void client.invalidateQueries({ queryKey: ['tasks'] })
      props.onDone(outcome)
    },
  })
  const error = claim.error ?? complete.error
  const s = sla(task, Date.now())
  const done = task.status === 'completed' || task.status === 'cancelled'
  return (
    <Dialog title={task.title} onClose={props.onClose}>
      <p className={s.overdue ? 'overdue' : 'muted'}>{s.text}</p>
      <h3>{t('inbox.details')}</h3>
      <pre>{JSON.stringify(task.data, null, 2)}</pre>
      {error && (
        <p className="error" role="alert">
          {t('app.error', { message: error.message })}
        </p>
      )}
      {!done && task.status === 'open' && (
        <button type="button" className="primary" onClick={() => claim.mutate()} disabled={claim.isPending}>
          {t('inbox.claim')}
        </button>
      )}
      {!done && task.status === 'claimed' && (
        <>
          <p className="muted">{t('inbox.claimed')}</p>
          <label htmlFor="task-outcome">{t('inbox.outcome')}</label>
          <select id="task-outcome" value={outcome} onChange={(e) => setOutcome(e.target.value)}>
            {task.outcomes.map((o) => (
              <option key={o} value={o}>
                {o}
              </option>
            ))}
          </select>
          <Suspense fallback={<p role="status">{t('app.loading')}</p>}>
            <TaskForm
              schema={(task.form ?? { type: 'object' }) as object}
              submitLabel={t('inbox.complete', { outcome })}
              onSubmit={(data) => complete.mutate(data)}
            />
          </Suspense>
        </>
      )}
    </Dialog>
  )
}
