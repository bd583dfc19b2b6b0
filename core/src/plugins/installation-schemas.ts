import { type Static, Type } from '@sinclair/typebox'

// What the installation, upgrade and invocation routes accept and answer.

export const Uuid = Type.String({ format: 'uuid' })
export const InstallationView = Type.Object({
  id: Uuid,
  tenantId: Uuid,
  plugin: Type.String(),
  version: Type.String(),
  versionId: Uuid,
  mount: Type.String({ description: 'Routes are served under /v1/x/<mount>/….' }),
  capabilities: Type.Array(Type.String(), { description: 'Capabilities the tenant consented to.' }),
  settings: Type.Record(Type.String(), Type.Unknown(), { description: 'Settings; secret ones are never returned.' }),
  secrets: Type.Array(Type.String(), { description: 'Names of the secret settings that have a value.' }),
  status: Type.String(),
  installedBy: Type.String(),
  history: Type.Array(Type.Object({ versionId: Uuid, version: Type.String(), at: Type.String() }), {
    description: 'Versions installed before, oldest first: what rollback returns to.',
  }),
  pendingUpgrade: Type.Union([
    Type.Object(
      {
        versionId: Uuid,
        version: Type.String(),
        capabilities: Type.Object({ added: Type.Array(Type.String()), removed: Type.Array(Type.String()) }),
      },
      { description: 'An upgrade waiting for consent to the capabilities it adds.' },
    ),
    Type.Null(),
  ]),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
})
/** The host calls of an invocation (core/src/plugins/invocation-transcript.ts). */
export const HostCallTranscript = Type.Object({
  calls: Type.Array(
    Type.Object({
      op: Type.String(),
      args: Type.Optional(Type.Unknown()),
      ok: Type.Boolean(),
      result: Type.Optional(Type.Unknown()),
      error: Type.Optional(Type.String()),
      ms: Type.Number(),
    }),
  ),
  omitted: Type.Integer({ description: 'Host calls past the first 50, counted only' }),
  sampled: Type.Optional(
    Type.Literal(true, {
      description:
        "Only ops, outcomes and durations were kept: a successful run past its installation's budget of detailed records per minute",
    }),
  ),
})
export const InvocationView = Type.Object({
  id: Uuid,
  plugin: Type.String(),
  version: Type.String(),
  entryKind: Type.String(),
  entryName: Type.String(),
  callerKind: Type.String(),
  callerId: Type.String(),
  startedAt: Type.String({ format: 'date-time' }),
  wallMs: Type.Number(),
  cpuMs: Type.Number(),
  hostCalls: Type.Integer(),
  outcome: Type.String(),
  errorCode: Type.Union([Type.String(), Type.Null()]),
  logs: Type.Array(
    Type.Object({
      level: Type.String(),
      message: Type.String(),
      fields: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      time: Type.String(),
    }),
  ),
  input: Type.Optional(
    Type.Unknown({ description: 'What the plugin was given: a bounded summary, personal data masked' }),
  ),
  transcript: Type.Optional(Type.Union([HostCallTranscript, Type.Null()])),
})
export const TenantQuery = Type.Object({
  tenantId: Type.Optional(
    Type.String({ format: 'uuid', description: 'Platform admins and partner admins act on a tenant they manage.' }),
  ),
})
export const IdParams = Type.Object({ id: Uuid })
export const PLUGIN_NAME = '^@[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*$'

/** An invocation row as the API shows it. */
export function invocationView(r: Record<string, unknown>) {
  return {
    id: r.id as string,
    plugin: r.plugin as string,
    version: r.version as string,
    entryKind: r.entry_kind as string,
    entryName: r.entry_name as string,
    callerKind: r.caller_kind as string,
    callerId: r.caller_id as string,
    startedAt: new Date(r.started_at as string).toISOString(),
    wallMs: Number(r.wall_ms),
    cpuMs: Number(r.cpu_ms),
    hostCalls: Number(r.host_calls),
    outcome: r.outcome as string,
    errorCode: (r.error_code as string | null) ?? null,
    logs: (r.logs as Array<{ level: string; message: string; time: string }>) ?? [],
    ...(r.input !== undefined && r.input !== null ? { input: r.input } : {}),
    transcript: (r.transcript ?? r.host_call_ops ?? null) as Static<typeof HostCallTranscript> | null,
  }
}
