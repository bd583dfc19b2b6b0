import { capability } from '../i18n'

/** Capabilities in plain words, with the exact string for those who want it. */
export function Capabilities(props: { list: string[]; prefix?: (cap: string) => string }) {
  return (
    <ul>
      {props.list.map((c) => (
        <li key={c}>
          {props.prefix ? props.prefix(capability(c)) : capability(c)} <code className="muted">{c}</code>
        </li>
      ))}
    </ul>
  )
}
