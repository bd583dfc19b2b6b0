import RjsfForm from '@rjsf/core'
import type { ComponentType } from 'react'
import type { RJSFSchema, ValidatorType } from '@rjsf/utils'

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

/** A form from a JSON Schema (a task's, a plugin's settings, a plugin screen's): RJSF, loaded on demand. */
export default function TaskForm(props: {
  schema: object
  submitLabel: string
  onSubmit: (data: Record<string, unknown>) => void
}) {
  return (
    <Form
      schema={props.schema as RJSFSchema}
      validator={serverSideValidator}
      uiSchema={{ 'ui:submitButtonOptions': { submitText: props.submitLabel, props: { className: 'primary' } } }}
      onSubmit={({ formData }: { formData?: unknown }) => props.onSubmit((formData ?? {}) as Record<string, unknown>)}
    />
  )
}
