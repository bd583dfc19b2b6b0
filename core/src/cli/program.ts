// `trellis`: start, migrate, admin, audit, keys, knowledge. Exit codes: 0 ok, 1 error (and a broken audit
// chain), 2 usage or environment (a bad variable, an unreachable DATABASE_URL or REDIS_URL, a port
// in use, a PostgreSQL schema behind the code, a refused confirmation). Commands that read or write
// the database migrate the embedded default first, as `start` does (open-database.ts).
// Arguments are parsed before anything heavy loads: `--help` and `--version` answer at once, and
// telemetry and the kernel load only for the command that needs them.
import { readFileSync } from 'node:fs'
import { Argument, Command, CommanderError, Option } from 'commander'
import type { KernelConfig } from '../config.js'
import { addGovernanceCommands } from './governance-commands.js'
import type { Extension } from '../extension-api/define.js'
import { type CliIo, processIo } from './io.js'

export type { CliIo } from './io.js'

/**
 * What the composition root gives the CLI: the extensions every kernel it starts runs with —
 * asked for only when a command starts a kernel, so that the composition root can load them then.
 * `io` replaces the process's streams (tests run the commands in their own process); `start`
 * always speaks to the process's own.
 */
export interface CliAssembly {
  extensions(): Extension[] | Promise<Extension[]>
  io?: Partial<CliIo>
}

/** Errors of the operator's environment (exit 2), not of the program. */
const ENVIRONMENT = new Set(['KRN_ERR_CONFIG_INVALID', 'KRN_ERR_SCHEMA_BEHIND', 'KRN_ERR_DATABASE_UNAVAILABLE'])

const version = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version

/** Telemetry first (it must run before pg, http and fastify load), then the commands. */
async function load(io: CliIo) {
  const { startTelemetry } = await import('../observability/telemetry.js')
  const stopTelemetry = await startTelemetry(process.env.OTEL_EXPORTER_OTLP_ENDPOINT).catch((err) => {
    io.stderr(`trellis: telemetry disabled: ${(err as Error).message}\n`)
    return undefined
  })
  return { stopTelemetry, ...(await import('./commands.js')) }
}

async function config(extra: Record<string, string | undefined> = {}): Promise<KernelConfig> {
  const { loadConfig } = await import('../config.js')
  const env = { ...process.env }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v
  return loadConfig(env)
}

/**
 * Runs `trellis` with `argv` (as `process.argv`: node, the script, then the arguments) and
 * resolves to the exit code; `start` resolves once the kernel listens, and keeps running. The
 * composition root (@trellis/platform) passes its extensions; core's own entry (main.ts) runs
 * the kernel alone.
 */
export async function runCli(argv: string[], assembly: CliAssembly): Promise<number> {
  const io: CliIo = { ...processIo, ...assembly.io }
  let code = 0
  const exitWith = (c: number) => {
    code = Math.max(code, c)
  }
  const program = new Command()
    .name('trellis')
    .description(
      'Trellis: a platform kernel for embedded ERP — tenancy, identity, events, audit and sandboxed plugins.',
    )
    .version(version, '-V, --version', 'print the version')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
  const jsonOption = (what: string) => new Option('--json', `print ${what} as JSON`)

  program
    .command('start')
    .description(
      'Start the kernel. Without DATABASE_URL it runs on the embedded database in TRELLIS_DATA_DIR (default ./.trellis), migrating it first.',
    )
    .option('--demo', 'also create a demo partner, a tenant it manages, and a user for each built-in role')
    .option('--port <port>', 'port to listen on (default: PORT or 3000)')
    .option('--migrate', 'run pending migrations first (automatic on the embedded database)')
    .addOption(
      new Option(
        '--role <role>',
        'what this process runs: all, api (HTTP only) or worker (jobs); default TRELLIS_ROLE or all',
      ).choices(['all', 'api', 'worker']),
    )
    .addOption(
      jsonOption(
        'one line once it listens — url, role, database, the first admin and the demo accounts (logs go to stderr)',
      ),
    )
    .action(async (opts: { demo?: boolean; port?: string; migrate?: boolean; role?: string; json?: boolean }) => {
      const cfg = await config({ PORT: opts.port, TRELLIS_ROLE: opts.role })
      // With no telemetry to set up before pg loads, the database, Redis and the port are checked
      // before the kernel's modules load: a wrong environment answers at once.
      const checkedEarly = !process.env.OTEL_EXPORTER_OTLP_ENDPOINT
      if (checkedEarly) await (await import('./preflight.js')).preflight(cfg)
      const { runStart, stopTelemetry } = await load(io)
      await runStart(cfg, { ...opts, checked: checkedEarly }, await assembly.extensions(), stopTelemetry)
    })

  program
    .command('migrate')
    .description('Manage the database schema (uses DATABASE_ADMIN_URL when set)')
    .addArgument(new Argument('<direction>', 'up, down or status').choices(['up', 'down', 'status']))
    .option('--to <migration>', 'stop at this migration')
    .option('-y, --yes', 'down: revert without asking')
    .addOption(jsonOption('the migrations'))
    .action(async (direction: 'up' | 'down' | 'status', opts: { to?: string; yes?: boolean; json?: boolean }) => {
      const cfg = await config()
      exitWith(await (await load(io)).runMigrate(cfg, direction, opts, io))
    })

  const admin = program.command('admin').description('Platform administrators')
  admin
    .command('create')
    .description('Create a platform admin (password from TRELLIS_ADMIN_PASSWORD, or generated and printed once)')
    .requiredOption('--email <email>', "the admin's email")
    .option('--name <name>', 'display name', 'Platform admin')
    .addOption(jsonOption('the admin'))
    .action(async (opts: { email: string; name: string; json?: boolean }) => {
      const cfg = await config()
      await (await load(io)).runAdminCreate(cfg, opts, io)
    })

  const audit = program.command('audit').description('The tamper-evident audit log')
  audit
    .command('verify')
    .description('Recompute hash chains; exits 1 naming the first broken entry')
    .option('--tenant <id>', "only this organisation (tenant, partner, or the platform's all-zero id)")
    .option(
      '--checkpoints <file|dir>',
      'also hold each chain against signed checkpoints (a JSON-lines file, or a directory of them as TRELLIS_AUDIT_CHECKPOINT_DIR writes)',
    )
    .addOption(jsonOption('the reports'))
    .action(async (opts: { tenant?: string; json?: boolean; checkpoints?: string }) => {
      const cfg = await config()
      exitWith(await (await load(io)).runAuditVerify(cfg, opts, io))
    })
  audit
    .command('checkpoint')
    .description(
      'Sign the head of each audit chain now and publish it (kernel.audit.checkpoint events, and TRELLIS_AUDIT_CHECKPOINT_DIR when set)',
    )
    .option('--tenant <id>', 'only this organisation')
    .addOption(jsonOption('the checkpoints'))
    .action(async (opts: { tenant?: string; json?: boolean }) => {
      const cfg = await config()
      await (await load(io)).runAuditCheckpoint(cfg, opts, io)
    })

  const keys = program.command('keys').description('Access-token signing keys')
  keys
    .command('rotate')
    .description('Start signing with a new key; tokens signed by the old one stay valid until they expire')
    .addOption(jsonOption('the new key id'))
    .action(async (opts: { json?: boolean }) => {
      const cfg = await config()
      await (await load(io)).runKeysRotate(cfg, opts, io)
    })

  const knowledge = program.command('knowledge').description('Knowledge bases')
  knowledge
    .command('evaluate')
    .description("Run a knowledge base's stored test questions: hit rate at k and mean reciprocal rank")
    .requiredOption('--tenant <id>', 'the organisation (tenant or partner) that owns the base')
    .requiredOption('--kb <slug|id>', 'the knowledge base')
    .option('--k <n>', 'hit rate at k (1–10)', '3')
    .option('--roles <names>', 'comma-separated role names to retrieve as (default: documents open to every member)')
    .addOption(jsonOption('the report'))
    .action(async (opts: { tenant: string; kb: string; k?: string; roles?: string; json?: boolean }) => {
      const cfg = await config()
      await load(io)
      const { runKnowledgeEvaluate } = await import('../knowledge/evaluate-command.js')
      await runKnowledgeEvaluate(cfg, opts)
    })

  addGovernanceCommands(program, { io, config: () => config(), load, exitWith })

  try {
    await program.parseAsync(argv)
    return code
  } catch (err) {
    // --help and --version exit 0; every parse error is usage (2).
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2
    const errCode = (err as { code?: unknown }).code
    if (typeof errCode === 'string' && /^[A-Z]+_ERR_/.test(errCode)) {
      io.stderr(`trellis: ${errCode}: ${(err as Error).message}\n`)
      return ENVIRONMENT.has(errCode) ? 2 : 1
    }
    io.stderr(`${(err as Error)?.stack ?? String(err)}\n`)
    return 1
  }
}
