import { type ReactNode, useEffect, useId, useRef } from 'react'
import { t } from '../i18n'

/** A modal dialog: focus moves into it, Tab stays inside, Escape closes, focus returns on close. */
export function Dialog(props: { title: string; onClose: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDivElement>(null)
  const id = useId()
  // The latest onClose, without re-running the effect (which would move focus) when it changes.
  const onClose = useRef(props.onClose)
  onClose.current = props.onClose
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null
    const el = ref.current
    const focusable = () =>
      Array.from(
        el?.querySelectorAll<HTMLElement>('button, [href], input, select, textarea, [tabindex]:not([tabindex="-1"])') ??
          [],
      ).filter((e) => !e.hasAttribute('disabled'))
    ;(focusable()[0] ?? el)?.focus()
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') onClose.current()
      if (e.key !== 'Tab') return
      const items = focusable()
      if (!items.length) return
      const first = items[0]
      const last = items[items.length - 1]
      if (e.shiftKey && document.activeElement === first) {
        e.preventDefault()
        last.focus()
      } else if (!e.shiftKey && document.activeElement === last) {
        e.preventDefault()
        first.focus()
      }
    }
    document.addEventListener('keydown', onKey)
    return () => {
      document.removeEventListener('keydown', onKey)
      before?.focus()
    }
  }, [])
  return (
    <div className="backdrop">
      <div className="dialog" role="dialog" aria-modal="true" aria-labelledby={id} ref={ref} tabIndex={-1}>
        <h2 id={id}>{props.title}</h2>
        {props.children}
        <div className="actions">
          <button type="button" className="secondary" onClick={props.onClose}>
            {t('common.close')}
          </button>
        </div>
      </div>
    </div>
  )
}
