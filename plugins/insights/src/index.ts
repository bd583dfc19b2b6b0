// @trellis/insights: metrics across the ERP plugins and dashboards over them, declared in its
// manifest; the kernel computes the metrics (GET /v1/metrics) and serves the dashboards
// (GET /v1/dashboards). Its one workflow turns a breached alert rule into a task for the
// rule's role.
import { definePlugin } from '@trellis/plugin-sdk'
import manifest from '../trellis.plugin.json' with { type: 'json' }
import { alertTask } from './alert-task.js'

export default definePlugin({ manifest, workflows: { alertTask } })
