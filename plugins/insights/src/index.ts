// @trellis/insights: metrics across the ERP plugins and dashboards over them. Everything it
// offers is declared in its manifest; the kernel computes the metrics (GET /v1/metrics) and
// serves the dashboards (GET /v1/dashboards). No code runs in the sandbox.
import { definePlugin } from '@trellis/plugin-sdk'
import manifest from '../trellis.plugin.json' with { type: 'json' }

export default definePlugin({ manifest })
