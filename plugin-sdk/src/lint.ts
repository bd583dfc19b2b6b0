// The capability lint: what the manifest declares against what the built bundle exports and
// the sizes it has — the second half of what \`trellis-plugin validate\` and the marketplace check.
import { matchesEventPattern, parseCapability } from './capabilities.js'
import { internalFetchTarget, subscriptionFindings } from './capability-policy.js'
import type { PluginManifest } from './manifest-types.js'
import type { BundleEntries } from './protocol.js'
import { type ManifestIssue, pointerSegment, SIZE_LIMITS } from './manifest.js'

const ptr = (...parts: Array<string | number>) => parts.map((p) => `/${pointerSegment(p)}`).join('')

/** What the lint looks at besides the manifest. */
export interface LintInput {
  /** A manifest that passed {@link validateManifest}. */
  manifest: PluginManifest
  /** Entries the bundle declares (from the built bundle, or the sandbox's `load`). */
  entries?: BundleEntries
  /** Artifact sizes in bytes, checked against {@link SIZE_LIMITS}. */
  sizes?: { bundleBytes?: number; sourceMapBytes?: number; packageBytes?: number }
}

/**
 * The capability lint: code and manifest agree (every handler declared, every declaration
 * handled), every capability is needed and usable, no unbounded egress, sizes within limits.
 * Returns errors and warnings; errors fail `validate`, `pack` and the marketplace's checks.
 */
export function lintPlugin({ manifest: m, entries, sizes }: LintInput): {
  errors: ManifestIssue[]
  warnings: ManifestIssue[]
} {
  const errors: ManifestIssue[] = []
  const warnings: ManifestIssue[] = []
  const issue = (severity: 'error' | 'warning', pointer: string, rule: string, message: string) =>
    (severity === 'error' ? errors : warnings).push({ pointer, message, rule, severity })
  const caps = m.capabilities.map((c, i) => ({ c, i, p: parseCapability(c) }))
  // A capability the plugin's declarations need (an error without it), or requested for none (a warning).
  const paired = (cap: string, declares: string, declared: boolean) => {
    const found = caps.find((x) => x.c === cap)
    if (declared && !found)
      issue(
        'error',
        '/capabilities',
        'capability-missing',
        `the plugin declares ${declares} but does not request the "${cap}" capability`,
      )
    if (!declared && found)
      issue(
        'warning',
        ptr('capabilities', found.i),
        'capability-unused',
        `"${cap}" is requested but the plugin declares no ${declares}`,
      )
  }
  const _has = (kind: string) => caps.some((x) => !('error' in x.p) && x.p.kind === kind)
  const patterns = (kind: 'events:emit' | 'events:subscribe') =>
    caps.flatMap((x) =>
      !('error' in x.p) && x.p.kind === kind ? [{ ...x, pattern: (x.p as { pattern: string }).pattern }] : [],
    )

  if (entries) {
    const declaredRoutes = (m.routes ?? []).map((r) => `${r.method} ${r.path}`)
    const pairs: Array<[string, string[], string[], string, (i: number) => string]> = [
      ['route', entries.route ?? [], declaredRoutes, '/routes', (i) => ptr('routes', i)],
      [
        'event',
        entries.event ?? [],
        m.events?.subscribes ?? [],
        '/events/subscribes',
        (i) => ptr('events', 'subscribes', i),
      ],
      [
        'action',
        entries.action ?? [],
        Object.keys(m.actions ?? {}),
        '/actions',
        (i) => ptr('actions', Object.keys(m.actions ?? {})[i]!),
      ],
      [
        'workflow-step',
        entries.workflowStep ?? [],
        Object.entries(m.workflows ?? {}).flatMap(([w, d]) => d.steps.map((s) => `${w}.${s}`)),
        '/workflows',
        (i) => {
          const flat = Object.entries(m.workflows ?? {}).flatMap(([w, d]) =>
            d.steps.map((_, j) => ptr('workflows', w, 'steps', j)),
          )
          return flat[i]!
        },
      ],
    ]
    for (const [kind, inCode, declared, where, at] of pairs) {
      for (const name of inCode)
        if (!declared.includes(name))
          issue(
            'error',
            where,
            `${kind}-undeclared`,
            `the code handles ${kind.replace('-', ' ')} "${name}" but the manifest does not declare it`,
          )
      declared.forEach((name, i) => {
        if (!inCode.includes(name))
          issue(
            'error',
            at(i),
            `${kind}-unhandled`,
            `the manifest declares ${kind.replace('-', ' ')} "${name}" but the code has no handler for it`,
          )
      })
    }
  }

  const collections = Object.keys(m.collections ?? {})
  paired('data', 'collections', collections.length > 0)

  const subscribes = m.events?.subscribes ?? []
  const subPatterns = patterns('events:subscribe')
  subscribes.forEach((type, i) => {
    if (!subPatterns.some((p) => matchesEventPattern(p.pattern, type)))
      issue(
        'error',
        ptr('events', 'subscribes', i),
        'capability-missing',
        `subscribing to "${type}" needs a capability events:subscribe:<pattern> matching it`,
      )
  })
  // Workflows that start on events or wait for them need the same capability.
  const workflowEvents = Object.entries(m.workflows ?? {}).flatMap(([w, d]) => [
    ...(d.start?.events ?? []).map((type, i) => ({ type, at: ptr('workflows', w, 'start', 'events', i) })),
    ...(d.waitsFor ?? []).map((type, i) => ({ type, at: ptr('workflows', w, 'waitsFor', i) })),
  ])
  for (const e of workflowEvents) {
    if (!subPatterns.some((p) => matchesEventPattern(p.pattern, e.type)))
      issue(
        'error',
        e.at,
        'capability-missing',
        `a workflow that starts on or waits for "${e.type}" needs a capability events:subscribe:<pattern> matching it`,
      )
  }
  const subscribed = [...subscribes, ...workflowEvents.map((e) => e.type)]
  for (const p of subPatterns)
    if (!subscribed.some((t) => matchesEventPattern(p.pattern, t)))
      issue(
        'warning',
        ptr('capabilities', p.i),
        'capability-unused',
        `"${p.c}" matches no event in events.subscribes or the workflows' start.events and waitsFor`,
      )

  const emits = Object.keys(m.events?.emits ?? {})
  const emitPatterns = patterns('events:emit')
  for (const type of emits) {
    if (!emitPatterns.some((p) => matchesEventPattern(p.pattern, type)))
      issue(
        'error',
        ptr('events', 'emits', type),
        'capability-missing',
        `emitting "${type}" needs a capability events:emit:<pattern> matching it`,
      )
  }
  for (const p of emitPatterns)
    if (!emits.some((t) => matchesEventPattern(p.pattern, t)))
      issue(
        'warning',
        ptr('capabilities', p.i),
        'capability-unused',
        `"${p.c}" matches no event in events.emits (declare each emitted event with its payload schema)`,
      )
  const short = m.name.split('/')[1] ?? ''
  for (const type of emits)
    if (!type.startsWith(`${short}.`))
      issue(
        'warning',
        ptr('events', 'emits', type),
        'event-name',
        `emitted event types should start with the plugin's name: "${short}.<entity>.<past-verb>"`,
      )

  const settingsProps = (
    m.settings && typeof m.settings === 'object' ? ((m.settings as Record<string, unknown>).properties ?? {}) : {}
  ) as Record<string, Record<string, unknown>>
  const secretNames = Object.entries(settingsProps)
    .filter(([, p]) => p && p.secret === true)
    .map(([n]) => n)
  const secretsCap = caps.find((x) => x.c === 'secrets')
  if (secretNames.length && !secretsCap)
    issue(
      'error',
      ptr('settings', 'properties', secretNames[0]!),
      'capability-missing',
      'secret settings can only be read with the "secrets" capability',
    )
  if (!secretNames.length && secretsCap)
    issue(
      'warning',
      ptr('capabilities', secretsCap.i),
      'capability-unused',
      '"secrets" is requested but no setting is marked "secret": true, so no secret can ever be read',
    )

  const workflows = Object.keys(m.workflows ?? {})
  paired('workflows', 'workflows', workflows.length > 0)

  for (const x of caps) {
    if ('error' in x.p) continue
    if (x.p.kind === 'plugins:call') {
      if (!m.dependencies || !(x.p.plugin in m.dependencies))
        issue(
          'error',
          ptr('capabilities', x.i),
          'capability-unusable',
          `"${x.c}" calls ${x.p.plugin}, which is not in dependencies, so it may not be installed`,
        )
    }
    if (x.p.kind === 'http:fetch') {
      for (const h of x.p.hosts) {
        if (h === '*')
          issue(
            'error',
            ptr('capabilities', x.i),
            'http-fetch-wildcard',
            '"http:fetch:*" allows egress to any host; list the hosts the plugin needs',
          )
        else if (h.startsWith('*.'))
          issue(
            'warning',
            ptr('capabilities', x.i),
            'http-fetch-wildcard',
            `"${h}" allows every subdomain of ${h.slice(2)}; reviewers will ask why`,
          )
        const internal = internalFetchTarget(h)
        if (internal)
          issue(
            'warning',
            ptr('capabilities', x.i),
            'http-fetch-internal',
            `"${h}" is a ${internal.reason} destination: the marketplace refuses it and no tenant can grant it unless the platform's operator allow-listed it`,
          )
      }
    }
  }
  for (const f of subscriptionFindings(m)) {
    if (f.rule === 'reserved')
      issue(
        'warning',
        '/capabilities',
        'subscribe-reserved',
        `${f.message}: the marketplace refuses "${f.pattern}" and no tenant can grant it`,
      )
    else if (f.rule === 'everything' || f.rule === 'any-namespace')
      issue('warning', '/capabilities', 'subscribe-broad', `${f.message}; reviewers will ask why`)
  }

  const permissions = new Set((m.permissions ?? []).map((p) => p.name))
  ;(m.routes ?? []).forEach((r, i) => {
    if (r.permission !== undefined && !permissions.has(r.permission))
      issue(
        'warning',
        ptr('routes', i, 'permission'),
        'permission-undeclared',
        `"${r.permission}" is not among the permissions this plugin contributes (fine if the kernel or a dependency defines it)`,
      )
  })

  const limit = (bytes: number | undefined, max: number, pointer: string, what: string) => {
    if (bytes !== undefined && bytes > max)
      issue('error', pointer, 'size-limit', `${what} is ${bytes} bytes; the limit is ${max}`)
  }
  limit(sizes?.bundleBytes, SIZE_LIMITS.bundleBytes, '', 'the bundle (dist/plugin.js)')
  limit(sizes?.sourceMapBytes, SIZE_LIMITS.sourceMapBytes, '', 'the source map (dist/plugin.js.map)')
  limit(sizes?.packageBytes, SIZE_LIMITS.packageBytes, '', 'the package')
  return { errors, warnings }
}
