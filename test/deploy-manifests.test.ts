// Issue #15: the shipped Kubernetes manifests and Dockerfile start under a restricted pod
// security context. Parsed for real (every YAML document), cross-checked with the Dockerfile,
// and their penumbra configs, container args and probes tried against a real penumbra.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { parse as parseYaml, parseAllDocuments, stringify } from 'yaml'
import { ROOT, runCli, tempDir, writeFile } from './helpers/proxy-util.js'
import { startPenumbra, startUpstream, urls } from './helpers/servers.js'

type Doc = Record<string, any>
const DIR = join(ROOT, 'config', 'kubernetes')
const docs: Array<{ file: string, doc: Doc }> = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f)).flatMap((file) =>
  parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((d) => {
    assert.equal(d.errors.length, 0, `${file}: ${d.errors.map((e) => e.message).join('; ')}`)
    return { file, doc: d.toJSON() as Doc }
  }).filter((x) => x.doc !== null))
const deployments = docs.filter((d) => d.doc.kind === 'Deployment')
const penumbraContainer = (d: Doc): Doc => (d.spec.template.spec.containers as Doc[]).find((c) => String(c.image).includes('penumbra'))!

/** The penumbra config a Deployment mounts (from the ConfigMap its config volume names). */
function mountedConfig (d: Doc): Record<string, any> {
  const pod = d.spec.template.spec
  const c = penumbraContainer(d)
  const mount = (c.volumeMounts as Doc[]).find((m) => m.mountPath === '/etc/penumbra')!
  const volume = (pod.volumes as Doc[]).find((v) => v.name === mount.name)!
  const cm = docs.find((x) => x.doc.kind === 'ConfigMap' && x.doc.metadata.name === volume.configMap.name)
  assert.ok(cm, `ConfigMap ${String(volume.configMap.name)} is shipped`)
  return parseYaml(cm.doc.data['penumbra.yaml'] as string) as Record<string, any>
}

test('the Dockerfile runs as a numeric non-root UID:GID, the one the manifests name', () => {
  const users = [...readFileSync(join(ROOT, 'Dockerfile'), 'utf8').matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]!)
  assert.equal(users.length, 1)
  const [uid, gid] = users[0]!.split(':').map(Number)
  assert.ok(Number.isInteger(uid) && uid! > 0 && Number.isInteger(gid), `USER ${users[0]!} must be numeric UID:GID (kubelet cannot check runAsNonRoot against a name)`)
  assert.ok(deployments.length >= 2)
  for (const { file, doc } of deployments) {
    const pod = doc.spec.template.spec.securityContext
    const ctr = penumbraContainer(doc).securityContext
    for (const sc of [pod, ctr]) {
      assert.equal(sc.runAsNonRoot, true, file)
      assert.equal(sc.runAsUser, uid, `${file}: runAsUser`)
      assert.equal(sc.runAsGroup, gid, `${file}: runAsGroup`)
    }
    assert.equal(ctr.readOnlyRootFilesystem, true, file)
    assert.equal(ctr.allowPrivilegeEscalation, false, file)
    assert.deepEqual(ctr.capabilities?.drop, ['ALL'], file)
    assert.equal(pod.seccompProfile?.type, 'RuntimeDefault', file)
  }
})

test('admin: a token from a mounted Secret, and no client Service exposes the admin port', () => {
  for (const { file, doc } of deployments) {
    const cfg = mountedConfig(doc)
    assert.equal(cfg.admin.token, undefined, `${file}: no token committed in a ConfigMap`)
    const tokenFile = cfg.admin.tokenFile as string
    const c = penumbraContainer(doc)
    const mount = (c.volumeMounts as Doc[]).find((m) => tokenFile.startsWith(String(m.mountPath) + '/'))
    assert.ok(mount, `${file}: admin.tokenFile ${tokenFile} is under a volume mount`)
    const vol = (doc.spec.template.spec.volumes as Doc[]).find((v) => v.name === mount.name)!
    assert.ok(vol.secret?.secretName, `${file}: the token volume is a Secret`)
    assert.ok(docs.some((x) => x.doc.kind === 'Secret' && x.doc.metadata.name === vol.secret.secretName), `Secret ${String(vol.secret.secretName)} is shipped`)
    for (const m of c.volumeMounts as Doc[]) assert.ok((doc.spec.template.spec.volumes as Doc[]).some((v) => v.name === m.name), `${file}: volume ${String(m.name)}`)
  }
  const services = docs.filter((d) => d.doc.kind === 'Service')
  for (const { file, doc } of services) {
    const targets = (doc.spec.ports as Doc[]).map((p) => p.targetPort)
    assert.ok(!(targets.includes('http') && targets.includes('admin')), `${file}: Service ${String(doc.metadata.name)} mixes the client and admin ports`)
  }
  // The ServiceMonitor still finds an admin Service.
  const sm = docs.find((d) => d.doc.kind === 'ServiceMonitor')!.doc
  const sel = sm.spec.selector.matchLabels as Record<string, string>
  const scraped = services.filter((s) => Object.entries(sel).every(([k, v]) => s.doc.metadata.labels?.[k] === v))
  assert.ok(scraped.length >= 2 && scraped.every((s) => (s.doc.spec.ports as Doc[]).every((p) => p.name === sm.spec.endpoints[0].port)), 'ServiceMonitor selects only admin Services')
})

test('each Deployment\'s config, container args and probes work against a real penumbra', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t)
  const up = await startUpstream()
  t.after(() => up.close())
  const token = writeFile(dir, 'token', 'a-token-from-the-secret\n')
  for (const { file, doc } of deployments) {
    const cfg = mountedConfig(doc)
    const c = penumbraContainer(doc)
    const ports = new Map((c.ports as Doc[]).map((p) => [p.name as string, p.containerPort as number]))
    assert.equal(ports.get('admin'), cfg.admin.port, `${file}: the admin containerPort is admin.port`)
    assert.equal(ports.get('http'), cfg.listen.port, `${file}: the http containerPort is listen.port`)
    // The same config, pointed at loopback servers and a token file here.
    const local = structuredClone(cfg)
    local.listen = { host: '127.0.0.1', port: 0 }
    local.admin = { ...local.admin, host: '127.0.0.1', port: 0, tokenFile: token }
    local.primary = { ...local.primary, url: up.url }
    for (const s of local.shadows ?? []) s.url = up.url
    const cfgFile = writeFile(dir, `${file}.yaml`, stringify(local))
    // The container's args, with the config path swapped, are accepted by the CLI.
    const args = (c.args as string[]).map((a) => (a === '/etc/penumbra/penumbra.yaml' ? cfgFile : a))
    const check = await runCli([...args, '--check'])
    assert.equal(check.code, 0, `${file}: ${args.join(' ')} --check: ${check.stderr}`)
    const app = await startPenumbra(local)
    try {
      const admin = urls(app).admin
      for (const probe of [c.livenessProbe, c.readinessProbe]) {
        assert.equal(probe.httpGet.port, 'admin', file)
        const r = await request(`${admin}${String(probe.httpGet.path)}`)
        await r.body.text()
        assert.equal(r.statusCode, 200, `${file}: ${String(probe.httpGet.path)} answers without the token`)
      }
      const scrape = await request(`${admin}/metrics`)
      await scrape.body.text()
      assert.equal(scrape.statusCode, 200, 'Prometheus scrapes without the token')
      const report = await request(`${admin}/report`)
      await report.body.text()
      assert.equal(report.statusCode, 401, 'reads need the token')
    } finally {
      await app.stop()
    }
  }
})
