import t from 'tap'
import { Cordons } from './cordons.js'
import { Placement } from './placement.js'
import type { WorkerProcess } from './worker-process.js'

// Placement's memory accounting, with stand-ins for worker processes (only the fields it reads).
function worker(slot: number): WorkerProcess {
  return {
    slot,
    inflight: new Set<number>(),
    untrusted: 0,
    dead: false,
    draining: false,
    cordon: false,
    committedMb: 0,
  } as unknown as WorkerProcess
}

function setup(tenantCapMb: number, workerCapMb = 4096) {
  const w = worker(0)
  const placement = new Placement(
    { workerIsolateMemoryMb: workerCapMb, tenantIsolateMemoryMb: tenantCapMb, probationInvocations: 3 },
    new Cordons(60_000, 4),
    () => [w],
    () => worker(9),
  )
  let rid = 0
  const start = (tenant: string, isoKey: string, mb: number) => {
    const at = placement.place(tenant, isoKey, true, mb)
    at.inflight.add(++rid)
    placement.commit(at, tenant, isoKey, mb)
    return { at, rid }
  }
  return { w, placement, start }
}

t.test('concurrent invocations of one isolate count its memory limit once', async (t) => {
  const { w, placement, start } = setup(128)
  const runs = Array.from({ length: 50 }, () => start('tenant-a', 'iso-1', 64))
  t.equal(w.committedMb, 64, 'fifty calls into one 64 MB isolate admit 64 MB')
  start('tenant-a', 'iso-2', 64)
  t.equal(w.committedMb, 128, 'a second isolate of the tenant adds its limit')
  t.throws(
    () => placement.place('tenant-a', 'iso-3', true, 64),
    { code: 'SBX_ERR_AT_CAPACITY' },
    'a third isolate passes the tenant cap',
  )
  t.doesNotThrow(
    () => placement.place('tenant-a', 'iso-1', true, 64),
    'another call into a running isolate adds nothing',
  )
  t.doesNotThrow(() => placement.place('tenant-b', 'iso-b', true, 64), "another tenant's cap is its own")
  for (const r of runs) {
    w.inflight.delete(r.rid)
    placement.release(w, 'tenant-a', 'iso-1', 64)
  }
  t.equal(w.committedMb, 64, 'the isolate is released with its last invocation')
  t.doesNotThrow(() => placement.place('tenant-a', 'iso-3', true, 64), 'room again for a new isolate')
})

t.test('the per-worker cap counts isolates, not invocations', async (t) => {
  const { w, placement, start } = setup(100_000, 128)
  start('a', 'iso-a', 64)
  start('b', 'iso-b', 64)
  for (let i = 0; i < 10; i++) start('b', 'iso-b', 64)
  t.equal(w.committedMb, 128)
  t.throws(() => placement.place('c', 'iso-c', true, 64), { code: 'SBX_ERR_AT_CAPACITY' })
})
