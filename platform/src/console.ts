/**
 * The web console, served by the kernel itself: the built single-page app (console/dist) at
 * /console with long-cached hashed assets, every other /console path answering the app's page
 * (client-side routes), `/` redirecting there (and the e-mailed links' `/reset-password` and
 * `/accept-invitation` to the console's pages for them), and a strict Content-Security-Policy: scripts,
 * styles and connections from this origin only — no inline script, no eval, no framing.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import fastifyStatic from '@fastify/static'
import { defineExtension, type Extension } from '@trellis/core'

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' https: data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

/** Where the console's build lives (`npm install` builds it: the root `prepare` script). */
export function consoleDist(): string {
  return join(dirname(createRequire(import.meta.url).resolve('@trellis/console/package.json')), 'dist')
}

export function consoleExtension(opts: { dist?: string } = {}): Extension {
  const root = opts.dist ?? consoleDist()
  return defineExtension({
    name: 'console',
    deps: {},
    register(_deps, points) {
      points.pages.add(async (app) => {
        app.get('/', { schema: { hide: true } }, (_request, reply) => reply.redirect('/console/'))
        app.get('/console', { schema: { hide: true } }, (_request, reply) => reply.redirect('/console/'))
        // The kernel's e-mails link to /reset-password?token=… and /accept-invitation?token=… on
        // the public URL: each leads to the console's page for it, the query kept.
        for (const path of ['/reset-password', '/accept-invitation'])
          app.get(path, { schema: { hide: true } }, (request, reply) => {
            const query = request.url.indexOf('?')
            return reply.redirect(`/console${path}${query >= 0 ? request.url.slice(query) : ''}`)
          })
        if (!existsSync(join(root, 'index.html'))) {
          app.get('/console/*', { schema: { hide: true } }, (_request, reply) =>
            reply
              .code(503)
              .type('text/plain')
              .send('The console is not built: run `npm run build -w console` (npm install does it).'),
          )
          return
        }
        await app.register(async (scope) => {
          scope.addHook('onSend', async (request, reply, payload) => {
            reply.header('content-security-policy', CONSOLE_CSP)
            reply.header('x-content-type-options', 'nosniff')
            reply.header('referrer-policy', 'same-origin')
            reply.header(
              'cache-control',
              request.url.startsWith('/console/assets/') && reply.statusCode === 200
                ? 'public, max-age=31536000, immutable'
                : 'no-cache',
            )
            return payload
          })
          await scope.register(fastifyStatic, {
            root,
            prefix: '/console/',
            index: ['index.html'],
            cacheControl: false,
            wildcard: false,
          })
          // Client-side routes (/console/inbox, /console/marketplace/…) get the app's page.
          scope.get('/console/*', { schema: { hide: true } }, (request, reply) => {
            if (request.url.startsWith('/console/assets/')) return reply.code(404).send({ title: 'Not Found' })
            return reply.sendFile('index.html')
          })
        })
      })
    },
  })
}
