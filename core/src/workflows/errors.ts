import { defineErrors } from '@trellis/plugin-sdk'

/** Workflow runtime and task errors. */
export const WFL = defineErrors('WFL', {
  WORKFLOW_NOT_FOUND: {
    status: 404,
    title: 'Workflow not found',
    message: (d: { plugin: string; workflow: string }) => `${d.plugin} has no workflow ${d.workflow}`,
  },
  NOT_GRANTED: {
    status: 403,
    title: 'Workflows not granted',
    message: (d: { plugin: string }) => `${d.plugin} was not granted the "workflows" capability`,
  },
  BAD_DIRECTIVE: { status: 502, title: 'Invalid workflow directive', message: (d: { reason: string }) => d.reason },
  NOT_CANCELLABLE: {
    status: 409,
    title: 'Instance cannot be cancelled',
    message: (d: { status: string }) => `the instance is ${d.status}`,
  },
  TASK_NOT_OPEN: { status: 409, title: 'Task not open', message: (d: { status: string }) => `the task is ${d.status}` },
  NOT_YOUR_TASK: { status: 403, title: 'Not your task', message: (d: { reason: string }) => d.reason },
  OUTCOME_INVALID: {
    status: 400,
    title: 'Invalid outcome',
    message: (d: { outcome: string; outcomes: string[] }) => `"${d.outcome}" is not one of ${d.outcomes.join(', ')}`,
  },
  FORM_INVALID: {
    status: 400,
    title: 'Form data did not validate',
    message: (d: { reason: string; problems?: Array<{ pointer: string; message: string }> }) => d.reason,
  },
})
