// Files of `trellis-plugin create`: one collection, one route, one event handler and a test.
import { createRequire } from 'node:module'

const sdkVersion = (createRequire(import.meta.url)('../../package.json') as { version: string }).version

export interface TemplateInput {
  /** `@scope/name`. */
  name: string
  description: string
}

export function templateFiles({ name, description }: TemplateInput): Record<string, string> {
  const short = name.split('/')[1]!
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
          properties: { name: { type: 'string', minLength: 1, maxLength: 200 }, qty: { type: 'integer', minimum: 0 }, announced: { type: 'boolean' } },
        },
        indexes: [{ fields: ['name'] }],
      },
    },
    events: {
      emits: { [created]: { schema: { type: 'object', required: ['itemId'], properties: { itemId: { type: 'string' } } }, description: 'An item was created' } },
      subscribes: [created],
    },
    routes: [
      {
        method: 'POST',
        path: '/items',
        permission: `${short}.items.write`,
        request: { body: { type: 'object', required: ['name', 'qty'], properties: { name: { type: 'string' }, qty: { type: 'integer', minimum: 0 } } } },
        description: 'Create an item',
      },
    ],
  }
  return {
    'trellis.plugin.json': JSON.stringify(manifest, null, 2) + '\n',
    'package.json':
      JSON.stringify(
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
            test: 'node --import tsx --test test/*.test.ts',
          },
          devDependencies: { '@trellis/plugin-sdk': `^${sdkVersion}`, tsx: '^4.20.0', typescript: '^5.9.0' },
        },
        null,
        2,
      ) + '\n',
    'tsconfig.json':
      JSON.stringify(
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
      ) + '\n',
    '.gitignore': 'node_modules/\ndist/\n*.tgz\n*.tgz.sig\n*.pem\n',
    'src/index.ts': `import { collection, definePlugin } from '@trellis/plugin-sdk'
import type { PluginContext, RouteRequest, TrellisEvent } from '@trellis/plugin-sdk'
import manifest from '../trellis.plugin.json' with { type: 'json' }

/** A record of the \`items\` collection (its JSON Schema is in trellis.plugin.json). */
export interface Item {
  name: string
  qty: number
  announced?: boolean
}

type Ctx = PluginContext<{ items: Item }>

/** POST /items: stores an item and announces it. */
async function createItem(req: RouteRequest<{ name: string; qty: number }>, ctx: Ctx) {
  if (req.body.qty > 1_000_000) return { status: 422, body: { error: 'qty is too large' } }
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
    'test/plugin.test.ts': `import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestHost } from '@trellis/plugin-sdk'
import { plugin } from '../src/index.js'

test('POST /items stores the item and emits ${created}', async () => {
  const host = createTestHost(plugin)
  const res = await host.route('POST /items', { body: { name: 'bolt', qty: 3 } })
  assert.equal(res.status, 201)
  const item = res.body as { id: string; name: string; version: number }
  assert.equal(item.name, 'bolt')
  assert.deepEqual(host.emitted, [{ type: '${created}', data: { itemId: item.id }, subject: item.id }])

  await host.event('${created}', { itemId: item.id })
  const stored = host.collections.get('items')!.get(item.id)!
  assert.equal(stored.announced, true)
  assert.equal(stored.version, 2)
})
`,
    'README.md': `# ${name}

${description}

\`\`\`sh
npm install
npm test                      # unit tests against the SDK's in-memory host
npx trellis-plugin validate   # manifest schema, capability lint, size limits
npx trellis-plugin build      # dist/plugin.js + dist/plugin.js.map
npx trellis-plugin pack       # signed ${name.replace(/^@/, '').replace('/', '-')}-0.1.0.tgz (run \`trellis-plugin keys generate\` once)
\`\`\`
`,
  }
}
