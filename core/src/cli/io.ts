// Where `trellis` commands write and whether they may ask: the process's streams, or what a caller
// that runs the commands in its own process (a test) gives instead.

/** The CLI's streams. */
export interface CliIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
  /** Whether a question can be asked (`migrate down` without `--yes`). */
  stdinIsTTY: boolean
}

export const processIo: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  get stdinIsTTY() {
    return Boolean(process.stdin.isTTY)
  },
}

/** Writes `line` and a line end to `io`'s stdout. */
export const lineTo =
  (io: CliIo) =>
  (line = ''): void =>
    io.stdout(`${line}\n`)
