import type { Logger } from 'pino'

/**
 * Logs an outage of something the pipeline depends on (the queue's Redis, the database) once
 * when it starts and once when it ends, instead of a warning on every commit while it lasts.
 * Failures in between go to the debug level.
 */
export class OutageLog {
  private since: number | undefined
  private failures = 0

  constructor(
    private readonly what: string,
    private readonly logger?: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  get down(): boolean {
    return this.since !== undefined
  }

  failed(err: unknown): void {
    this.failures++
    if (this.since !== undefined) {
      this.logger?.debug({ err }, `${this.what} still failing`)
      return
    }
    this.since = this.now()
    this.logger?.warn({ err }, `${this.what} failed; events wait in the outbox and are retried until it recovers`)
  }

  ok(): void {
    if (this.since === undefined) return
    this.logger?.warn({ downMs: this.now() - this.since, failures: this.failures }, `${this.what} recovered`)
    this.since = undefined
    this.failures = 0
  }
}
