import { Command, Option } from 'commander'
import { TrellisError } from '@trellis/plugin-sdk'
import { loadConfig } from '../config.js'
import { startTelemetry } from '../observability/telemetry.js'

// Telemetry must be running before the kernel's modules (pg, http, fastify) are loaded.
const stopTelemetry = await startTelemetry(process.env.OTEL_EXPORTER_OTLP_ENDPOINT).catch((err) => {
  console.error(`trellis: telemetry disabled: ${(err as Error).message}`)
  return undefined
})
const { runStart, runMigrate, runAdminCreate, runAuditVerify, runAuditCheckpoint, runKeysRotate } = await import('./commands.js')

const program = new Command()
  .name('trellis')
  .description('Trellis: a platform kernel for embedded ERP — tenancy, identity, events, audit and sandboxed plugins.')
  .showHelpAfterError()
  .exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : 2)
  })

program
  .command('start')
  .description('Start the kernel. Without DATABASE_URL it runs on the embedded database in TRELLIS_DATA_DIR (default ./.trellis), migrating it first.')
  .option('--demo', 'also create a demo partner, a tenant it manages, and a user for each built-in role')
  .option('--port <port>', 'port to listen on (default: PORT or 3000)')
  .option('--migrate', 'run pending migrations first (automatic on the embedded database)')
  .action(async (opts: { demo?: boolean; port?: string; migrate?: boolean }) => runStart(config({ PORT: opts.port }), opts, stopTelemetry))

program
  .command('migrate')
  .description('Manage the database schema (uses DATABASE_ADMIN_URL when set)')
  .addArgument(new (await import('commander')).Argument('<direction>', 'up, down or status').choices(['up', 'down', 'status']))
  .option('--to <migration>', 'stop at this migration')
  .action(async (direction: 'up' | 'down' | 'status', opts: { to?: string }) => runMigrate(config(), direction, opts.to))

const admin = program.command('admin').description('Platform administrators')
admin
  .command('create')
  .description('Create a platform admin (password from TRELLIS_ADMIN_PASSWORD, or generated and printed once)')
  .requiredOption('--email <email>', 'the admin\'s email')
  .option('--name <name>', 'display name', 'Platform admin')
  .action(async (opts: { email: string; name: string }) => runAdminCreate(config(), opts))

const audit = program.command('audit').description('The tamper-evident audit log')
audit
  .command('verify')
  .description('Recompute hash chains; exits 1 naming the first broken entry')
  .option('--tenant <id>', 'only this organisation (tenant, partner, or the platform\'s all-zero id)')
  .option('--checkpoints <file|dir>', 'also hold each chain against signed checkpoints (a JSON-lines file, or a directory of them as TRELLIS_AUDIT_CHECKPOINT_DIR writes)')
  .addOption(new Option('--json', 'print the reports as JSON'))
  .action(async (opts: { tenant?: string; json?: boolean; checkpoints?: string }) => runAuditVerify(config(), opts))
audit
  .command('checkpoint')
  .description('Sign the head of each audit chain now and publish it (kernel.audit.checkpoint events, and TRELLIS_AUDIT_CHECKPOINT_DIR when set)')
  .option('--tenant <id>', 'only this organisation')
  .addOption(new Option('--json', 'print the checkpoints as JSON'))
  .action(async (opts: { tenant?: string; json?: boolean }) => runAuditCheckpoint(config(), opts))

const keys = program.command('keys').description('Access-token signing keys')
keys.command('rotate').description('Start signing with a new key; tokens signed by the old one stay valid until they expire').action(async () => runKeysRotate(config()))

function config(extra: Record<string, string | undefined> = {}) {
  const env = { ...process.env }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v
  return loadConfig(env)
}

try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof TrellisError) {
    console.error(`trellis: ${err.code}: ${err.message}`)
    process.exit(err.code === 'KRN_ERR_CONFIG_INVALID' ? 2 : 1)
  }
  console.error(err)
  process.exit(1)
}
