import { v7 as uuidv7 } from 'uuid'
import { compileJsonSchema, type JsonValue } from '@trellis/plugin-sdk'
import type { Tx } from '../db/database.js'
import type { SecretBox } from '../crypto/secret-box.js'
import { PLG } from '../errors.js'
import type { PluginVersion } from './versions.js'

/** A tenant's installation of a plugin version. */
export interface Installation {
  id: string
  tenantId: string
  plugin: string
  /** The path segment its routes are served under: `/v1/x/<mount>/…`. */
  mount: string
  versionId: string
  capabilities: string[]
  settings: Record<string, JsonValue>
  /** Names of the secret settings that have a value (values are never returned). */
  secretNames: string[]
  secretsEnc: string | null
  status: 'active' | 'disabled'
  /** Until when every run keeps its full transcript, past the budget (ADR 0113); null: none open. */
  detailUntil: string | null
  installedBy: string
  createdAt: string
  updatedAt: string
}

export interface InstallationRow {
  id: string
  tenant_id: string
  plugin: string
  mount: string
  version_id: string
  capabilities: string[]
  settings: Record<string, JsonValue>
  secret_names: string[]
  secrets_enc: string | null
  status: 'active' | 'disabled'
  detail_until: Date | null
  installed_by: string
  created_at: Date
  updated_at: Date
}

export const toInstallation = (r: InstallationRow): Installation => ({
  id: r.id,
  tenantId: r.tenant_id,
  plugin: r.plugin,
  mount: r.mount,
  versionId: r.version_id,
  capabilities: r.capabilities,
  settings: r.settings,
  secretNames: r.secret_names,
  secretsEnc: r.secrets_enc,
  status: r.status,
  detailUntil: r.detail_until ? new Date(r.detail_until).toISOString() : null,
  installedBy: r.installed_by,
  createdAt: new Date(r.created_at).toISOString(),
  updatedAt: new Date(r.updated_at).toISOString(),
})

/** The default mount of a plugin: its name without the scope. */
export const defaultMount = (plugin: string) => plugin.split('/')[1]!

/** The associated data binding an installation's sealed secrets to it. */
export const secretsAd = (installationId: string) => `plugin-secrets:${installationId}`

/** Property names the settings schema marks `"secret": true`. */
export function secretKeys(version: PluginVersion): Set<string> {
  const props =
    (version.manifest.settings as { properties?: Record<string, { secret?: boolean }> } | undefined)?.properties ?? {}
  return new Set(
    Object.entries(props).flatMap(([k, v]) => (v && typeof v === 'object' && v.secret === true ? [k] : [])),
  )
}

const settingsValidators = new Map<string, ReturnType<typeof compileJsonSchema>>()

/**
 * Validates the whole settings object (secrets included) against the plugin's settings schema,
 * then splits it: plain settings are stored as they are, secrets sealed with AES-256-GCM.
 */
export function splitSettings(
  version: PluginVersion,
  all: Record<string, unknown>,
): { settings: Record<string, JsonValue>; secrets: Record<string, string> } {
  const schema = version.manifest.settings
  if (schema !== undefined) {
    let validate = settingsValidators.get(version.id)
    if (!validate) settingsValidators.set(version.id, (validate = compileJsonSchema(schema)))
    const problems = validate(all)
    if (problems.length)
      throw PLG.SETTINGS_INVALID({
        reason: problems.map((p) => `${p.pointer || '/'} ${p.message}`).join('; '),
        problems,
      })
  } else if (Object.keys(all).length > 0) {
    throw PLG.SETTINGS_INVALID({ reason: `${version.name} takes no settings` })
  }
  const secretNames = secretKeys(version)
  const settings: Record<string, JsonValue> = {}
  const secrets: Record<string, string> = {}
  for (const [k, v] of Object.entries(all)) {
    if (secretNames.has(k)) {
      if (typeof v !== 'string') throw PLG.SETTINGS_INVALID({ reason: `/${k} is a secret and must be a string` })
      secrets[k] = v
    } else settings[k] = v as JsonValue
  }
  return { settings, secrets }
}

/** Capabilities consented to must be exactly those the version requests. */
export function checkConsent(version: PluginVersion, consented: string[]): void {
  const requested = new Set(version.manifest.capabilities)
  const given = new Set(consented)
  const missing = [...requested].filter((c) => !given.has(c))
  const extra = [...given].filter((c) => !requested.has(c))
  if (missing.length || extra.length) throw PLG.CONSENT_MISMATCH({ missing, extra })
}

export const INSTALLATION_COLS =
  'id, tenant_id, plugin, mount, version_id, capabilities, settings, secret_names, secrets_enc, status, detail_until, installed_by, created_at, updated_at'

/** Inserts the installation in the tenant's transaction; a second install of the plugin, or a taken mount, is a conflict. */
export async function insertInstallation(
  tx: Tx,
  box: SecretBox,
  input: {
    version: PluginVersion
    mount: string
    capabilities: string[]
    settings: Record<string, JsonValue>
    secrets: Record<string, string>
    installedBy: string
  },
): Promise<Installation> {
  const id = uuidv7()
  const names = Object.keys(input.secrets)
  const sealed = names.length ? box.seal(JSON.stringify(input.secrets), secretsAd(id)) : null
  const rows = await tx.sql<InstallationRow>(
    `insert into plugin_installations (id, plugin, mount, version_id, capabilities, settings, secret_names, secrets_enc, installed_by)
     values (?::uuid, ?, ?, ?::uuid, ?::text[], ?::jsonb, ?::text[], ?, ?)
     on conflict do nothing returning ${INSTALLATION_COLS}`,
    [
      id,
      input.version.name,
      input.mount,
      input.version.id,
      input.capabilities,
      JSON.stringify(input.settings),
      names,
      sealed,
      input.installedBy,
    ],
  )
  if (!rows[0]) throw PLG.ALREADY_INSTALLED({ name: input.version.name })
  return toInstallation(rows[0])
}

/** Reads the decrypted secrets of an installation. */
export function openSecrets(box: SecretBox, inst: Pick<Installation, 'id' | 'secretsEnc'>): Record<string, string> {
  return inst.secretsEnc ? (JSON.parse(box.open(inst.secretsEnc, secretsAd(inst.id))) as Record<string, string>) : {}
}
