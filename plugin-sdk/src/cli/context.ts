// What every command of `trellis-plugin` shares: its I/O, how it prints and fails, exit codes.
import { resolve } from 'node:path'
import { TrellisError } from '../errors.js'
import type { ManifestIssue } from '../manifest.js'
import { SDK } from '../sdk-errors.js'

/** Exit codes of `trellis-plugin`. */
export const EXIT = Object.freeze({ OK: 0, ERROR: 1, USAGE: 2, VALIDATION: 3, AUTH: 4, NETWORK: 5 })

/** Where the CLI reads and writes; tests replace each part. */
export interface Io {
  stdout: (s: string) => void
  stderr: (s: string) => void
  stdinIsTTY: boolean
  cwd: string
  /** Asks one question (default: readline on stdin/stderr); used only when stdin is a TTY. */
  prompt?: (question: string) => Promise<string>
  /** Stops long-running commands (`dev`); default: SIGINT/SIGTERM. */
  signal?: AbortSignal
  /** Called when `dev` is serving (tests use it). */
  onDevReady?: (info: { url: string; basePath: string; token: string }) => void
}

/** Thrown to end a command with an exit code (what it had to say is printed already). */
export class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`)
  }
}

/** The exit code an error of the SDK's catalog ends the CLI with. */
export function exitCodeOf(err: TrellisError): number {
  if (SDK.USAGE.is(err) || SDK.SCOPE_RESERVED.is(err)) return EXIT.USAGE
  if (SDK.MANIFEST_INVALID.is(err) || SDK.VALIDATION_FAILED.is(err)) return EXIT.VALIDATION
  if (SDK.KEY_NOT_FOUND.is(err) || SDK.KEY_INVALID.is(err)) return EXIT.AUTH
  return EXIT.ERROR
}

/** What a command gets: the I/O and the ways to answer. */
export interface Cli {
  readonly io: Io
  /** Whether the running command was given `--json`. */
  json: boolean
  /** Prints a result: the human text, or `{ ok: true, ...data }` as one JSON line. */
  print(human: string, data: Record<string, unknown>): void
  /** Prints the error (with its code) and ends the command with its exit code. */
  fail(err: TrellisError, extra?: Record<string, unknown>): never
  /** The plugin directory of `--dir`, resolved against the working directory. */
  dirOf(opts: { dir?: string }): string
  /** Manifest and lint issues, one per line. */
  issuesText(issues: ManifestIssue[]): string
}

export function createCli(io: Partial<Io>): Cli {
  const out: Io = {
    stdout: io.stdout ?? ((s) => void process.stdout.write(s)),
    stderr: io.stderr ?? ((s) => void process.stderr.write(s)),
    stdinIsTTY: io.stdinIsTTY ?? Boolean(process.stdin.isTTY),
    cwd: io.cwd ?? process.cwd(),
    prompt: io.prompt,
    signal: io.signal,
    onDevReady: io.onDevReady,
  }
  const cli: Cli = {
    io: out,
    json: false,
    print: (human, data) =>
      cli.json ? out.stdout(`${JSON.stringify({ ok: true, ...data })}\n`) : out.stdout(`${human}\n`),
    fail(err, extra = {}) {
      if (cli.json)
        out.stdout(
          `${JSON.stringify({
            ok: false,
            error: { code: err.code, message: err.message, details: err.details ?? null },
            ...extra,
          })}\n`,
        )
      else out.stderr(`error ${err.code}: ${err.message}\n`)
      throw new Exit(exitCodeOf(err))
    },
    dirOf: (opts) => resolve(out.cwd, opts.dir ?? '.'),
    issuesText: (issues) =>
      issues
        .map((i) => `  ${i.severity === 'error' ? 'error' : 'warn '} ${i.pointer || '/'}  ${i.message}  [${i.rule}]`)
        .join('\n'),
  }
  return cli
}

/** Turns what ended a command into its exit code, printing what has not been printed. */
export function exitCodeOfError(cli: Cli, err: unknown): number {
  if (err instanceof Exit) return err.code
  if (err instanceof TrellisError) {
    try {
      cli.fail(err)
    } catch (e) {
      if (e instanceof Exit) return e.code
    }
  }
  cli.io.stderr(`error: ${(err as Error)?.stack ?? String(err)}\n`)
  return EXIT.ERROR
}
