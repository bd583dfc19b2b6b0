import RjsfForm from '@rjsf/core'
import type { ComponentType, MouseEventHandler } from 'react'
import type { RJSFSchema, ValidatorType } from '@rjsf/utils'
import { type MessageKey, t } from '../i18n'

/**
 * The console's Content-Security-Policy forbids eval, which compiling validators (ajv) needs: the
 * browser checks required fields and types through the inputs RJSF renders, and the kernel
 * validates every submission against the same schema and answers a problem the form shows.
 */
// RJSF 6's class types are written against React 19's; the runtime supports React 18.
// biome-ignore lint/suspicious/noExplicitAny: its props are checked by RJSF at run time
const Form = RjsfForm as unknown as ComponentType<any>

const serverSideValidator: ValidatorType = {
  validateFormData: () => ({ errors: [], errorSchema: {} }),
  isValid: () => true,
  rawValidation: () => ({ errors: [] }),
  reset: () => {},
}

type ButtonProps = { id?: string; onClick?: MouseEventHandler<HTMLButtonElement>; disabled?: boolean }

/** RJSF's array buttons as words (its own are icon fonts the console does not load, named only by a title). */
function TextButton({ id, onClick, disabled, label }: ButtonProps & { label: MessageKey }) {
  return (
    <button id={id} type="button" className="secondary" onClick={onClick} disabled={disabled}>
      {t(label)}
    </button>
  )
}

const templates = {
  ButtonTemplates: {
    AddButton: (p: ButtonProps) => <TextButton {...p} label="form.add" />,
    RemoveButton: (p: ButtonProps) => <TextButton {...p} label="form.remove" />,
    MoveUpButton: (p: ButtonProps) => <TextButton {...p} label="form.up" />,
    MoveDownButton: (p: ButtonProps) => <TextButton {...p} label="form.down" />,
    CopyButton: (p: ButtonProps) => <TextButton {...p} label="form.copy" />,
    ClearButton: (p: ButtonProps) => <TextButton {...p} label="form.clear" />,
  },
}

const SCALAR = new Set(['string', 'number', 'integer', 'boolean'])

/**
 * The schema as a form shows it: a choice between scalar shapes (`"0.25"` or `0.25`) becomes its
 * first shape — one input, not a picker; the kernel still validates against the whole schema.
 */
export function formSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(formSchema)
  if (!schema || typeof schema !== 'object') return schema
  const s = schema as Record<string, unknown>
  const choice = (s.anyOf ?? s.oneOf) as Array<Record<string, unknown>> | undefined
  if (choice?.length && choice.every((c) => typeof c.type === 'string' && SCALAR.has(c.type))) {
    const { anyOf: _a, oneOf: _o, ...rest } = s
    return { ...rest, ...choice[0] }
  }
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, formSchema(v)]))
}

/** A form from a JSON Schema (a task's, a plugin's settings, a plugin screen's): RJSF, loaded on demand. */
export default function TaskForm(props: {
  schema: object
  submitLabel: string
  onSubmit: (data: Record<string, unknown>) => void
}) {
  return (
    <Form
      schema={formSchema(props.schema) as RJSFSchema}
      validator={serverSideValidator}
      templates={templates}
      uiSchema={{ 'ui:submitButtonOptions': { submitText: props.submitLabel, props: { className: 'primary' } } }}
      onSubmit={({ formData }: { formData?: unknown }) => props.onSubmit((formData ?? {}) as Record<string, unknown>)}
    />
  )
}
