// A small driver that follows the workflow runtime's contract in the SDK's in-memory host: a plain
// value goes to the next step in manifest order, `next` to the step it names; a task or a wait
// stops the drive (the test decides what a person or an event does).
import type { TestHost } from '@trellis/plugin-sdk'
import { partnerOnboardingPlugin } from '../src/index.js'

const manifest = partnerOnboardingPlugin.manifest
const STEPS = manifest.workflows!.onboarding!.steps

export type Directive = { $workflow: string; [k: string]: any }
export const isDirective = (v: unknown): v is Directive =>
  !!v && typeof v === 'object' && typeof (v as Directive).$workflow === 'string'

/** Runs steps from `step` until the workflow ends or stops at a task or a wait; returns where it stopped. */
export async function drive(
  host: TestHost,
  step: string,
  input: unknown,
): Promise<{ at: string; directive: Directive | null; output?: unknown; trace: string[] }> {
  const trace: string[] = []
  for (let i = 0; i < 50; i++) {
    trace.push(step)
    const out = await host.step(`onboarding.${step}`, input)
    if (!isDirective(out)) {
      const next = STEPS[STEPS.indexOf(step) + 1]
      if (!next) return { at: step, directive: null, output: out, trace }
      step = next
      input = out
      continue
    }
    if (out.$workflow === 'next') {
      step = out.step
      input = out.input
      continue
    }
    return { at: step, directive: out, trace }
  }
  throw new Error('the workflow does not end')
}
