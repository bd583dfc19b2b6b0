import type { Redis } from 'ioredis'

/**
 * Tenant fairness for BullMQ, whose open-source edition has no groups: each job gets a priority
 * from its tenant's queued jobs (a Redis set of their ids per tenant), so a quiet tenant's first
 * job (priority 1) runs before a busy tenant's 600th (priority 600). A tenant's priorities never
 * go down while it has jobs queued (the highest it was given is kept until its set empties), so
 * its own jobs keep the order they were added in. Both steps are Lua scripts: atomic across
 * every kernel process sharing the Redis.
 */

// ARGV: job key base, fairness key base, cap (0: none), then id, tenant pairs.
// Returns one number per job: its priority, 0 when it is already queued, -1 when refused.
const ADMIT = `
local base, fair, cap = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out, batch = {}, {}
for i = 4, #ARGV, 2 do
  local id, tenant = ARGV[i], ARGV[i + 1]
  batch[id] = true
  local set = fair .. 'jobs:' .. tenant
  if redis.call('EXISTS', base .. id) == 1 then
    out[#out + 1] = 0
  else
    redis.call('SADD', set, id)
    local n = redis.call('SCARD', set)
    if cap > 0 and n > cap then
      -- ids whose job is gone (lost in a crash before it was released) no longer count; this
      -- batch's own are not added yet
      for _, m in ipairs(redis.call('SMEMBERS', set)) do
        if not batch[m] and redis.call('EXISTS', base .. m) == 0 then redis.call('SREM', set, m) end
      end
      n = redis.call('SCARD', set)
    end
    if cap > 0 and n > cap then
      redis.call('SREM', set, id)
      out[#out + 1] = -1
    else
      local p = math.max(n, tonumber(redis.call('HGET', fair .. 'last', tenant) or '0'))
      if p > ${2_097_151} then p = ${2_097_151} end
      redis.call('HSET', fair .. 'last', tenant, p)
      out[#out + 1] = p
    end
  end
end
return out
`

// ARGV: fairness key base, then id, tenant pairs.
const RELEASE = `
local fair = ARGV[1]
for i = 2, #ARGV, 2 do
  local id, tenant = ARGV[i], ARGV[i + 1]
  local set = fair .. 'jobs:' .. tenant
  redis.call('SREM', set, id)
  if redis.call('SCARD', set) == 0 then redis.call('HDEL', fair .. 'last', tenant) end
end
return 1
`

export class TenantFairness {
  constructor(
    private readonly redis: Redis,
    /** Where BullMQ keeps this queue's jobs: `<prefix>:<queue>:`. */
    private readonly jobKeyBase: string,
    /** Where the per-tenant sets live: `<prefix>:fair:<queue>:`. */
    private readonly fairKeyBase: string,
    private readonly cap: number | undefined,
  ) {}

  /** Counts the jobs in; returns each one's priority (0: already queued, -1: over its tenant's cap). */
  async admit(jobs: Array<{ id: string; tenant: string }>): Promise<number[]> {
    const args = [this.jobKeyBase, this.fairKeyBase, String(this.cap ?? 0), ...jobs.flatMap((j) => [j.id, j.tenant])]
    return (await this.redis.eval(ADMIT, 0, ...args)) as number[]
  }

  /** Counts jobs out (done, or never added after all). */
  async release(jobs: Array<{ id: string; tenant: string }>): Promise<void> {
    if (jobs.length === 0) return
    await this.redis.eval(RELEASE, 0, this.fairKeyBase, ...jobs.flatMap((j) => [j.id, j.tenant]))
  }
}
