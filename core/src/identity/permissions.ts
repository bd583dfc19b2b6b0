/**
 * Permissions are open-ended strings `<area>.<verb>` (plugins will contribute their own, e.g.
 * `orders.approve`). The built-in roles are made of the kernel's.
 */
export const PERMISSION_PATTERN = '^[a-z][a-z0-9_-]*(\\.[a-z0-9_-]+)+$'
const PERMISSION = new RegExp(PERMISSION_PATTERN)

export const KERNEL_PERMISSIONS = {
  platformAdmin: 'platform.admin',
  partnersManage: 'partners.manage',
  tenantsRead: 'tenants.read',
  tenantsManage: 'tenants.manage',
  brandingManage: 'branding.manage',
  usersRead: 'users.read',
  usersManage: 'users.manage',
  rolesManage: 'roles.manage',
  apiKeysManage: 'api_keys.manage',
  auditRead: 'audit.read',
  marketplaceReview: 'marketplace.review',
  pluginsPublish: 'plugins.publish',
  pluginsInstall: 'plugins.install',
  webhooksManage: 'webhooks.manage',
  eventsRead: 'events.read',
  workflowsManage: 'workflows.manage',
  knowledgeManage: 'knowledge.manage',
  knowledgeApprove: 'knowledge.approve',
  governanceExport: 'governance.export',
  governanceManage: 'governance.manage',
} as const

const P = KERNEL_PERMISSIONS

export type BuiltinRoleName =
  | 'platform_admin'
  | 'partner_admin'
  | 'partner_developer'
  | 'tenant_admin'
  | 'tenant_member'

export const BUILTIN_ROLES: Record<
  BuiltinRoleName,
  { description: string; orgKinds: Array<'platform' | 'partner' | 'tenant'>; permissions: string[] }
> = {
  platform_admin: {
    description: 'Operates the platform: partners, tenants, plugin review.',
    orgKinds: ['platform'],
    permissions: [
      P.platformAdmin,
      P.partnersManage,
      P.tenantsRead,
      P.tenantsManage,
      P.brandingManage,
      P.usersRead,
      P.usersManage,
      P.rolesManage,
      P.apiKeysManage,
      P.auditRead,
      P.marketplaceReview,
    ],
  },
  partner_admin: {
    description: 'Runs a partner: its tenants, branding, users, keys and plugins.',
    orgKinds: ['partner'],
    permissions: [
      P.tenantsRead,
      P.tenantsManage,
      P.brandingManage,
      P.usersRead,
      P.usersManage,
      P.rolesManage,
      P.apiKeysManage,
      P.auditRead,
      P.pluginsPublish,
      P.pluginsInstall,
      P.webhooksManage,
      P.eventsRead,
      P.knowledgeManage,
      P.knowledgeApprove,
    ],
  },
  partner_developer: {
    description: "Builds and publishes the partner's plugins.",
    orgKinds: ['partner'],
    permissions: [P.tenantsRead, P.usersRead, P.pluginsPublish],
  },
  tenant_admin: {
    description: 'Administers a tenant: users, roles, keys, plugins, webhooks, audit.',
    orgKinds: ['tenant'],
    permissions: [
      P.usersRead,
      P.usersManage,
      P.rolesManage,
      P.apiKeysManage,
      P.auditRead,
      P.pluginsInstall,
      P.webhooksManage,
      P.eventsRead,
      P.workflowsManage,
      P.knowledgeManage,
      P.knowledgeApprove,
      P.governanceExport,
      P.governanceManage,
    ],
  },
  tenant_member: {
    description: "Uses the tenant's plugins.",
    orgKinds: ['tenant'],
    permissions: [P.usersRead],
  },
}

export function isPermission(value: string): boolean {
  return PERMISSION.test(value)
}

/** The permissions in `wanted` that `held` does not include. */
export function missingPermissions(held: ReadonlySet<string> | readonly string[], wanted: readonly string[]): string[] {
  const set = held instanceof Set ? held : new Set(held)
  return [...new Set(wanted)].filter((p) => !set.has(p))
}
