import { t } from '../i18n'

/** What an action on the page came to: a notice (a polite status) and an error (an alert). */
export function Outcome({ notice, error }: { notice?: string; error?: Error | null }) {
  return (
    <>
      {notice && (
        <p className="status" role="status">
          {notice}
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          {t('app.error', { message: error.message })}
        </p>
      )}
    </>
  )
}
