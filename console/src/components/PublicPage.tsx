import type { ReactNode } from 'react'
import type { Branding } from '../branding'
import { t } from '../i18n'

/** A signed-out page (reset a password, accept an invitation): the brand's logo, a title, the content, a way back to sign-in. */
export function PublicPage(props: { branding: Branding; title: string; back?: string; children: ReactNode }) {
  return (
    <main className="login">
      {props.branding.logoUrl && <img src={props.branding.logoUrl} alt="" height={40} />}
      <h1>{props.title}</h1>
      {props.children}
      <p>
        <a href="/console/">{props.back ?? t('reset.back')}</a>
      </p>
    </main>
  )
}

/** What went wrong, announced to assistive technology (nothing when there is nothing). */
export function FormError(props: { text?: string }) {
  return props.text ? (
    <p className="error" role="alert">
      {props.text}
    </p>
  ) : null
}
