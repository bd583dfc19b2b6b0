// `trellis evidence create|verify` and `trellis export`: the evidence pack and the tenant archive
// from the operator's shell. Declared here (arguments only); the work loads when a command runs.
import { type Command, Option } from 'commander'
import type { KernelConfig } from '../config.js'
import type { CliIo } from './io.js'

export interface GovernanceCommandDeps {
  io: CliIo
  config(): Promise<KernelConfig>
  /** Telemetry and the kernel's modules, as every command that touches the database loads them. */
  load(io: CliIo): Promise<unknown>
  exitWith(code: number): void
}

/** Adds the governance commands to `program`. */
export function addGovernanceCommands(program: Command, deps: GovernanceCommandDeps): void {
  const { io } = deps
  const run = async () => {
    const cfg = await deps.config()
    await deps.load(io)
    return { cfg, commands: await import('../governance/commands.js') }
  }
  const evidence = program.command('evidence').description('Signed evidence packs for auditors')
  evidence
    .command('create')
    .description(
      "Write an organisation's signed evidence pack (access review, marketplace decisions, consents, kill switch, retention runs, audit-chain verification, configuration)",
    )
    .option('--tenant <id>', "the tenant (default: the platform's own pack)")
    .option('--from <date>', 'start of the period (ISO 8601; default 90 days before --to)')
    .option('--to <date>', 'end of the period, exclusive (ISO 8601; default now)')
    .option('--out <file>', 'write the pack here (default: stdout)')
    .action(async (opts: { tenant?: string; from?: string; to?: string; out?: string }) => {
      const { cfg, commands } = await run()
      deps.exitWith(await commands.runEvidenceCreate(cfg, opts, io))
    })
  evidence
    .command('verify')
    .description("Check a pack's signature against every key the platform signed with; exits 1 when it fails")
    .argument('<file>', 'the pack (JSON, as create or GET /v1/compliance/evidence wrote it)')
    .addOption(new Option('--json', 'print the verdict as JSON'))
    .action(async (file: string, opts: { json?: boolean }) => {
      const { cfg, commands } = await run()
      deps.exitWith(await commands.runEvidenceVerify(cfg, file, opts, io))
    })
  program
    .command('export')
    .description(
      "Write a tenant's archive (as GET /v1/governance/export does; restore it with POST /v1/tenants/:id/restore)",
    )
    .requiredOption('--tenant <id>', 'the tenant')
    .requiredOption('--out <file>', 'the archive file to write')
    .action(async (opts: { tenant: string; out: string }) => {
      const { cfg, commands } = await run()
      deps.exitWith(await commands.runExport(cfg, opts, io))
    })
}
