import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as { port: number }).port
  await new Promise((r) => s.close(r))
  return port
}

/** A private redis-server for one test only (never the shared one), empty and without persistence. */
export async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    '/usr/bin/redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d) => {
      out += d
      if (out.includes('Ready to accept connections')) resolve()
    })
    child.on('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)))
  })
  child.removeAllListeners('exit')
  child.stdout!.resume()
  return child
}

/** Kills a child process (SIGKILL) and waits for it to be gone. */
export const stopProcess = (child: ChildProcess) =>
  new Promise<void>((r) =>
    child.exitCode !== null || child.signalCode !== null ? r() : (child.once('exit', () => r()), child.kill('SIGKILL')),
  )
