// Files of `trellis-plugin create`: one collection, one route, one event handler and a test.
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const sdkVersion = (createRequire(import.meta.url)('../../package.json') as { version: string }).version
const sdkDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/**
 * How a new plugin depends on the SDK and on the platform its tests and `dev` run (the SDK's
 * optional peer): from the registry when this SDK was installed from one, otherwise (a Trellis
 * checkout) from this checkout's packages.
 */
function trellisDependencies(): Record<string, string> {
  if (sdkDir.split(/[\\/]/).includes('node_modules'))
    return { '@trellis/platform': `^${sdkVersion}`, '@trellis/plugin-sdk': `^${sdkVersion}` }
  return { '@trellis/platform': `file:${join(sdkDir, '..', 'platform')}`, '@trellis/plugin-sdk': `file:${sdkDir}` }
}

export interface TemplateInput {
  /** `@scope/name`. */
  name: string
  description: string
}

/** The error-code prefix of a plugin: its name without scope, upper-case (`hello-world` → `HELLO_WORLD`). */
export function errorPrefixOf(name: string): string {
  const prefix = name.split('/')[1]!.toUpperCase().replace(/-/g, '_')
  return /^[A-Z]/.test(prefix) ? prefix : `P${prefix}`
}

export function templateFiles({ name, description }: TemplateInput): Record<string, string> {
  const short = name.split('/')[1]!
  const prefix = errorPrefixOf(name)
  const created = `${short}.item.created`
  const manifest = {
    $schema: './node_modules/@trellis/plugin-sdk/schema/manifest.schema.json',
    name,
    version: '0.1.0',
    description,
    engines: { trellis: '^0.1.0' },
    capabilities: ['data', `events:emit:${short}.item.*`, `events:subscribe:${created}`],
    permissions: [{ name: `${short}.items.write`, description: 'Create items' }],
    collections: {
      items: {
        schema: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'qty'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 200 },
            qty: { type: 'integer', minimum: 0 },
            announced: { type: 'boolean' },
          },
        },
        indexes: [{ fields: ['name'] }],
      },
    },
    events: {
      emits: {
        [created]: {
          schema: { type: 'object', required: ['itemId'], properties: { itemId: { type: 'string' } } },
          description: 'An item was created',
        },
      },
      subscribes: [created],
    },
    routes: [
      {
        method: 'POST',
        path: '/items',
        permission: `${short}.items.write`,
        request: {
          body: {
            type: 'object',
            required: ['name', 'qty'],
            properties: { name: { type: 'string' }, qty: { type: 'integer', minimum: 0 } },
          },
        },
        description: 'Create an item',
      },
    ],
  }
  return {
    'trellis.plugin.json': `${JSON.stringify(manifest, null, 2)}\n`,
    'package.json': `${JSON.stringify(
      {
        name,
        version: '0.1.0',
        private: true,
        type: 'module',
        description,
        scripts: {
          build: 'trellis-plugin build',
          validate: 'trellis-plugin validate',
          pack: 'trellis-plugin pack',
          dev: 'trellis-plugin dev',
          test: 'trellis-plugin test',
        },
        devDependencies: { ...trellisDependencies(), '@types/node': '^20.0.0', typescript: '^5.9.0' },
      },
      null,
      2,
    )}\n`,
    'tsconfig.json': `${JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          resolveJsonModule: true,
          skipLibCheck: true,
          types: ['node'],
        },
        include: ['src', 'test'],
      },
      null,
      2,
    )}\n`,
    '.gitignore': 'node_modules/\ndist/\n*.tgz\n*.tgz.sig\n*.pem\n',
    'src/errors.ts': `import { defineErrors, worded } from '@trellis/plugin-sdk'

/**
 * The plugin's errors: a route answers one with \`problem(${prefix}.NAME, 'what happened')\`, as
 * RFC 9457 problem+json with the code \`${prefix}_ERR_NAME\` — the shape the kernel answers its own with.
 */
export const ${prefix} = defineErrors('${prefix}', {
  QTY_TOO_LARGE: { status: 422, title: 'Quantity too large', message: worded },
})
`,
    'src/index.ts': `import { collection, definePlugin, problem } from '@trellis/plugin-sdk'
import type { PluginContext, RouteRequest, TrellisEvent } from '@trellis/plugin-sdk'
import manifest from '../trellis.plugin.json' with { type: 'json' }
import { ${prefix} } from './errors.js'

/** A record of the \`items\` collection (its JSON Schema is in trellis.plugin.json). */
export interface Item {
  name: string
  qty: number
  announced?: boolean
}

type Ctx = PluginContext<{ items: Item }>

/** POST /items: stores an item and announces it. */
async function createItem(req: RouteRequest<{ name: string; qty: number }>, ctx: Ctx) {
  if (req.body.qty > 1_000_000) return problem(${prefix}.QTY_TOO_LARGE, \`qty \${req.body.qty} is over 1000000\`)
  const item = await ctx.data.items.insert({ name: req.body.name, qty: req.body.qty })
  await ctx.events.emit('${created}', { itemId: item.id }, { subject: item.id })
  ctx.log.info('item created', { itemId: item.id })
  return { status: 201, body: item }
}

/** Marks an item as announced once its event is delivered (deliveries are at-least-once). */
async function onItemCreated(event: TrellisEvent<{ itemId: string }>, ctx: Ctx) {
  const item = await ctx.data.items.get(event.data.itemId)
  if (!item || item.announced) return
  await ctx.data.items.update(item.id, { announced: true }, item.version)
}

export const plugin = definePlugin({
  manifest,
  collections: { items: collection<Item>() },
  routes: { 'POST /items': createItem },
  events: { '${created}': onItemCreated },
})
`,
    'test/plugin.test.ts': `// Runs against the real kernel: an embedded database, the sandbox, the event pipeline.
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { startPluginHarness } from '@trellis/plugin-sdk/testing'
import type { Item } from '../src/index.js'

const h = await startPluginHarness()
after(() => h.close())

test('POST /items stores the item and emits ${created}', async () => {
  const res = await h.route<Item & { id: string; version: number }>('POST', '/items', { body: { name: 'bolt', qty: 3 } })
  assert.equal(res.status, 201)
  assert.equal(res.body.name, 'bolt')
  assert.equal(res.body.version, 1)
  const emitted = await h.emitted()
  assert.deepEqual(emitted.map((e) => [e.type, e.data]), [['${created}', { itemId: res.body.id }]])
})

test('the event handler marks the item announced', async () => {
  const res = await h.route<{ id: string }>('POST', '/items', { body: { name: 'nut', qty: 1 } })
  await h.deliver('${created}', { itemId: res.body.id })
  const stored = (await h.records<Item & { id: string }>('items')).find((i) => i.id === res.body.id)
  assert.equal(stored?.announced, true)
})

test('a refusal of the plugin is a typed problem, and nothing is written', async () => {
  const before = (await h.records('items')).length
  const res = await h.route<{ code: string; status: number }>('POST', '/items', { body: { name: 'crate', qty: 2_000_000 } })
  assert.equal(res.status, 422)
  assert.equal(res.body.code, '${prefix}_ERR_QTY_TOO_LARGE')
  assert.equal((await h.records('items')).length, before)
})

test('the kernel refuses a body that does not match the route schema, and nothing is written', async () => {
  const before = (await h.records('items')).length
  const res = await h.route<{ code: string }>('POST', '/items', { body: { name: 'washer', qty: -1 } })
  assert.equal(res.status, 400)
  assert.equal(res.body.code, 'KRN_ERR_VALIDATION_FAILED')
  assert.equal((await h.records('items')).length, before)
})
`,
    'README.md': `# ${name}

${description}

\`\`\`sh
npm install
npm test                      # the tests in test/, against a real kernel and sandbox
npx trellis-plugin dev        # serve it at http://127.0.0.1:4000/v1/x/${name.split('/')[1]}/… ; reloads on change
npx trellis-plugin dev-kernel stop   # stop the warm kernel test and dev keep between runs
\`\`\`

The first \`npm test\` or \`dev\` starts a kernel that stays running (the *warm dev kernel*, stopped
after 30 idle minutes); the next runs each get a new tenant of it in about a second instead of
starting a kernel. \`--no-warm\` starts one of their own.

\`\`\`sh
npx trellis-plugin validate   # manifest schema, capability lint, size limits
npx trellis-plugin build      # dist/plugin.js + dist/plugin.js.map
npx trellis-plugin pack       # signed ${name.replace(/^@/, '').replace('/', '-')}-0.1.0.tgz (run \`trellis-plugin keys generate\` once)
\`\`\`
`,
  }
}
