// `trellis migrate down` shows what it will undo and asks first: `--yes` skips the question, and
// without a terminal to ask on (and no `--yes`) it refuses (KRN_ERR_CONFIG_INVALID, exit 2).
import { createInterface } from 'node:readline/promises'
import { KRN } from '../errors.js'
import { type CliIo, processIo } from './io.js'

/** Whether to revert `undo`; false (the caller exits 1) when the person declines. */
export async function confirmRevert(
  undo: string[],
  opts: { yes?: boolean; json?: boolean },
  io: CliIo = processIo,
): Promise<boolean> {
  const say = (line: string) => io.stderr(`${line}\n`)
  if (!opts.json || !opts.yes) {
    say(
      `migrate down will revert ${undo.length} migration${undo.length === 1 ? '' : 's'} (their tables and data may be dropped):`,
    )
    for (const m of undo) say(`  ${m}`)
  }
  if (opts.yes) return true
  if (!io.stdinIsTTY)
    throw KRN.CONFIG_INVALID({
      variable: '--yes',
      reason: 'migrate down reverts schema changes; there is no terminal to confirm on, so pass --yes',
    })
  const rl = createInterface({ input: process.stdin, output: process.stderr })
  try {
    const answer = await rl.question('Revert? [y/N] ')
    if (/^y(es)?$/i.test(answer.trim())) return true
    say('nothing reverted')
    return false
  } finally {
    rl.close()
  }
}
