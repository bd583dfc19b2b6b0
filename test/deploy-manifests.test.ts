import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments, parse } from 'yaml'
import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { Job } from 'kubernetes-models/batch/v1/Job'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy'
import { Secret } from 'kubernetes-models/v1/Secret'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { Service } from 'kubernetes-models/v1/Service'

// The packaging files, checked without docker or a cluster: every Kubernetes manifest against
// the Kubernetes schemas (kubernetes-models), and what compose.yaml and the Dockerfile promise.

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DIR = `${ROOT}deploy/kubernetes/`
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'v1/Secret': Secret,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
}

const manifests = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((file) =>
    parseAllDocuments(readFileSync(DIR + file, 'utf8')).map((doc) => {
      t.same(doc.errors, [], `${file} is YAML`)
      return { file, obj: doc.toJS() as any }
    }),
  )
const validate = (obj: any) => {
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`]
  if (!Model) throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}`)
  new Model(obj).validate()
}
const find = (kind: string, name: string) =>
  manifests.find((m) => m.obj.kind === kind && m.obj.metadata.name === name)?.obj

t.test('every manifest is valid against the Kubernetes schemas', async (t) => {
  t.ok(manifests.length >= 10)
  for (const { file, obj } of manifests)
    t.doesNotThrow(() => validate(obj), `${file}: ${obj.kind} ${obj.metadata?.name}`)
  // The check has teeth: a misspelt field or a wrong type is refused.
  const api = structuredClone(find('Deployment', 'trellis-api'))
  api.spec.replicas = 'two'
  t.throws(() => validate(api), 'a wrong type is refused')
  const probe = structuredClone(find('Deployment', 'trellis-api'))
  probe.spec.template.spec.containers[0].readinessProbe.httpGet.port = { name: 'http' }
  t.throws(() => validate(probe), 'a malformed probe is refused')
})

t.test('API and worker Deployments: their role, probes, drain, resources, non-root', async (t) => {
  for (const role of ['api', 'worker']) {
    const d = find('Deployment', `trellis-${role}`)
    const pod = d.spec.template.spec
    const c = pod.containers[0]
    t.same(c.args, ['start', '--role', role])
    t.equal(c.env.find((e: any) => e.name === 'TRELLIS_ROLE').value, role)
    t.equal(c.readinessProbe.httpGet.path, '/readyz')
    t.equal(c.livenessProbe.httpGet.path, '/healthz')
    t.ok(c.lifecycle.preStop, 'preStop lets the load balancer stop sending before SIGTERM')
    t.ok(pod.terminationGracePeriodSeconds >= 30, 'grace covers preStop and the drain deadline')
    t.ok(c.resources.requests.cpu && c.resources.requests.memory)
    t.equal(pod.securityContext.runAsNonRoot, true)
    t.equal(c.securityContext.allowPrivilegeEscalation, false)
    t.same(
      c.envFrom.map((e: any) => e.secretRef?.name ?? e.configMapRef?.name),
      ['trellis', 'trellis'],
      'the serving pods never see the owner credentials',
    )
  }
  const job = find('Job', 'trellis-migrate')
  const migrate = job.spec.template.spec.initContainers[0]
  t.same(migrate.args, ['migrate', 'up'])
  t.ok(
    migrate.envFrom.some((e: any) => e.secretRef?.name === 'trellis-migrations'),
    'migrations run as the owner',
  )
  const hpa = find('HorizontalPodAutoscaler', 'trellis-api')
  t.equal(hpa.spec.metrics[0].resource.name, 'cpu')
  const whpa = find('HorizontalPodAutoscaler', 'trellis-worker')
  t.equal(whpa.spec.metrics[0].external.metric.name, 'trellis_events_outbox_backlog', 'workers scale on queue depth')
  t.ok(find('PodDisruptionBudget', 'trellis-api') && find('PodDisruptionBudget', 'trellis-worker'))
  const np = find('NetworkPolicy', 'trellis')
  t.ok(np.spec.policyTypes.includes('Egress'))
  const open = np.spec.egress.find((e: any) => e.to?.[0]?.ipBlock)
  t.ok(open.to[0].ipBlock.except.includes('10.0.0.0/8'), 'internet egress excludes private ranges')
})

t.test('compose.yaml: PostgreSQL, Redis, a migration job, two API and two worker replicas, a collector', async (t) => {
  const compose = parse(readFileSync(`${ROOT}compose.yaml`, 'utf8'), { merge: true })
  const s = compose.services
  for (const name of ['postgres', 'redis', 'migrate', 'grants', 'api', 'worker', 'otel-collector']) t.ok(s[name], name)
  t.same(s.migrate.command, ['migrate', 'up'])
  t.equal(s.api.deploy.replicas, 2)
  t.equal(s.worker.deploy.replicas, 2)
  t.equal(s.api.environment.TRELLIS_ROLE, 'api')
  t.equal(s.worker.environment.TRELLIS_ROLE, 'worker')
  t.match(s.api.environment.REDIS_URL, /^redis:/)
  t.equal(s.api.depends_on.grants.condition, 'service_completed_successfully', 'serving waits for the migrations')
  t.notOk(s.api.environment.DATABASE_ADMIN_URL, 'the owner credentials only reach the migration job')
})

t.test('Dockerfile: multi-stage, Node 20 on Debian slim, isolated-vm built in the builder, non-root', async (t) => {
  const text = readFileSync(`${ROOT}Dockerfile`, 'utf8')
  const froms = [...text.matchAll(/^FROM (\S+)(?: AS (\w+))?/gm)].map((m) => ({ image: m[1], stage: m[2] }))
  t.same(
    froms.map((f) => f.stage),
    ['builder', 'runtime'],
  )
  t.ok(froms.every((f) => /^node:20-[a-z]+-slim$/.test(f.image!)))
  const builder = text.slice(0, text.indexOf('AS runtime'))
  t.match(builder, /rebuild isolated-vm/)
  t.match(text, /^USER 10001/m)
  t.match(text, /--no-node-snapshot/)
  t.notMatch(text.slice(text.indexOf('AS runtime')), /g\+\+|build-essential/, 'no compiler in the runtime image')
})
