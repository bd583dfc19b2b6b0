import type { Logger } from 'pino'
import type { Api } from '../http/types.js'

/**
 * Stops accepting connections and waits for in-flight requests to finish; idle keep-alive
 * connections close at once. Requests still running at `deadlineMs` have their connections
 * cut, so a stuck request cannot hold a rollout.
 */
export async function drainHttp(app: Api, deadlineMs: number, logger?: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const cut = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      logger?.warn({ deadlineMs }, 'requests still in flight at the drain deadline: closing their connections')
      app.server.closeAllConnections?.()
      resolve()
    }, deadlineMs)
    timer.unref()
  })
  await Promise.race([app.close(), cut])
  clearTimeout(timer)
}
