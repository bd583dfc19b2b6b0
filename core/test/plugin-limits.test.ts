import t from 'tap'
import { parsePluginLimits, resolvePluginLimits, PLUGIN_LIMIT_DEFAULTS } from '../src/plugins/plugin-limits.js'
import { loadConfig } from '../src/config.js'

t.test('plugin limits come from TRELLIS_PLUGIN_*, whole numbers from 1 up', async (t) => {
  t.same(parsePluginLimits({}), {})
  t.same(parsePluginLimits({ TRELLIS_PLUGIN_MAX_INVOCATIONS_PER_TENANT: '4', TRELLIS_PLUGIN_TX_IDLE_MS: ' 500 ' }), {
    maxInvocationsPerTenant: 4,
    transactionIdleMs: 500,
  })
  for (const bad of ['0', '-1', '1.5', 'ten']) {
    t.throws(
      () => parsePluginLimits({ TRELLIS_PLUGIN_TX_PER_TENANT: bad }),
      { code: 'KRN_ERR_CONFIG_INVALID' },
      `refuses ${bad}`,
    )
  }
  const config = loadConfig({ TRELLIS_DATA_DIR: t.testdir(), TRELLIS_PLUGIN_MAX_INVOCATIONS_PER_INSTALLATION: '3' })
  t.equal(config.pluginLimits?.maxInvocationsPerInstallation, 3, 'the kernel configuration carries them')
})

t.test('options in code win over the environment, then the defaults by database', async (t) => {
  const pg = resolvePluginLimits(
    { transactionIdleMs: 700, maxInvocationsPerTenant: 5 },
    { maxInvocationsPerTenant: 9 },
    { embedded: false, poolMax: 10 },
  )
  t.same(pg, {
    maxInvocationsPerTenant: 9,
    maxInvocationsPerInstallation: PLUGIN_LIMIT_DEFAULTS.maxInvocationsPerInstallation,
    transactionIdleMs: 700,
    transactionContendedIdleMs: PLUGIN_LIMIT_DEFAULTS.transactionContendedIdleMs,
    transactionsPerTenant: 5,
  })
  const embedded = resolvePluginLimits(undefined, {}, { embedded: true, poolMax: 1 })
  t.equal(embedded.transactionIdleMs, PLUGIN_LIMIT_DEFAULTS.transactionIdleMs)
  t.equal(embedded.transactionsPerTenant, 1, 'the one embedded connection: one transaction per tenant')
})
