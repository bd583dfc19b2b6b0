/**
 * OpenTelemetry tracing, on when OTEL_EXPORTER_OTLP_ENDPOINT is set: HTTP (Fastify and node
 * http), SQL (pg) and DNS/net spans exported over OTLP/HTTP. It must start before the modules
 * it instruments are loaded, so the CLI calls it first and imports the kernel afterwards.
 */
export async function startTelemetry(endpoint: string | undefined): Promise<(() => Promise<void>) | undefined> {
  if (!endpoint) return undefined
  // Everything instrumented (http, pg under knex, fastify) is CommonJS loaded by CommonJS, which
  // the require hook covers; the ESM loader hook is left out on purpose — it breaks packages
  // whose .mjs entry re-exports a CommonJS default (MikroORM's).
  const { NodeSDK } = await import('@opentelemetry/sdk-node')
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http')
  const { getNodeAutoInstrumentations } = await import('@opentelemetry/auto-instrumentations-node')
  const { FastifyOtelInstrumentation } = (await import('@fastify/otel')).default
  const sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME ?? 'trellis',
    traceExporter: new OTLPTraceExporter({ url: `${endpoint.replace(/\/$/, '')}/v1/traces` }),
    instrumentations: [
      getNodeAutoInstrumentations({
        '@opentelemetry/instrumentation-fs': { enabled: false },
      }),
      new FastifyOtelInstrumentation({ registerOnInitialization: true }),
    ],
  })
  sdk.start()
  return () => sdk.shutdown()
}
