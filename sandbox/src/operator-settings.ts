// Sandbox limits an operator sets through the environment (docs/operations.md); options passed
// to Sandbox.create win over them.
import { SBX } from './errors.js'
export interface OperatorDefaults {
  workerRecycleMb?: number
  cordonMs?: number
}

export function operatorDefaults(env: NodeJS.ProcessEnv = process.env): OperatorDefaults {
  const out: OperatorDefaults = {}
  const recycle = positive(env.TRELLIS_SANDBOX_WORKER_RECYCLE_MB, 'TRELLIS_SANDBOX_WORKER_RECYCLE_MB')
  if (recycle !== undefined) out.workerRecycleMb = recycle
  const cordon = positive(env.TRELLIS_SANDBOX_CORDON_MINUTES, 'TRELLIS_SANDBOX_CORDON_MINUTES')
  if (cordon !== undefined) out.cordonMs = cordon * 60_000
  return out
}

function positive(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value.trim() === '') return undefined
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0)
    throw SBX.INVALID_REQUEST({ reason: `${name} must be a positive number (got "${value.slice(0, 40)}")` })
  return n
}
