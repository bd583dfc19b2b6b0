import { runCli } from '../../src/cli/program.js'

/**
 * Runs `trellis <args>` (the kernel alone: the commands that open a database and end) in this
 * process, with `env` over this process's environment for the run, and answers what it printed
 * and its exit code — a spawned CLI process costs seconds of module loading for nothing a test
 * of these commands needs. Log lines are kept out of stdout as the real process keeps them.
 */
export async function trellisInProcess(
  args: string[],
  env: Record<string, string | undefined>,
): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const saved = process.env
  process.env = { ...saved, LOG_LEVEL: 'silent' }
  for (const [k, v] of Object.entries(env))
    if (v === undefined) delete process.env[k]
    else process.env[k] = v
  try {
    const status = await runCli(['node', 'trellis', ...args], {
      extensions: () => [],
      io: { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), stdinIsTTY: false },
    })
    return { status, stdout, stderr }
  } finally {
    process.env = saved
  }
}
