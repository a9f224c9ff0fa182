// Issue #18, several replicas: `penumbra canary` runs the controller outside the proxies. Two
// penumbra processes (controller: external) behind a real Prometheus; the controller reads the
// gates from Prometheus (counters summed over both replicas) and sets the weight on both through
// PUT /canary/weight, with the same engine and explanations as the in-process one.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request, Agent } from 'undici'
import { Daemon, PROMETHEUS, freePort, tempDir, waitForValue } from './helpers/observability-harness.js'
import { startPenumbra, startUpstream, urls, type Upstream } from './helpers/servers.js'
import { childConfigYaml, spawnPenumbra, writeFile } from './helpers/proxy-util.js'
import { runExternalCanary } from '../src/rollout/canary-cli.js'
import { createLogger } from '../src/log/logger.js'
import type { Penumbra } from '../src/index.js'

const TOKEN = 'canary-ext-token'
const AUTH = { authorization: `Bearer ${TOKEN}` }

function model (name: string, fail: (i: number) => boolean = () => false): Promise<Upstream> {
  let i = 0
  return startUpstream((_req, res) => {
    if (fail(i++)) { res.writeHead(503, { 'content-type': 'application/json' }); res.end('{"error":"overloaded"}'); return }
    const text = JSON.stringify({ predictions: [1], from: name })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  })
}

async function stack (t: { after: (fn: () => Promise<void>) => void }, cand: Upstream): Promise<{ apps: Penumbra[], base: Upstream, api: string }> {
  const base = await model('base')
  const partial = {
    backends: { base: { url: base.url }, cand: { url: cand.url } },
    primary: 'base',
    admin: { host: '127.0.0.1', port: 0, token: TOKEN, protectMetrics: false },
    compare: { ignore: ['/from'] },
    canary: { candidate: 'cand', controller: 'external', steps: [50, 100], intervalMs: 2500, minRequests: 40, maxHolds: 100, gates: { errorRate: { maxIncrease: 0.2 }, disagreement: { max: 0.3 } } }
  }
  const apps = [await startPenumbra(partial), await startPenumbra(partial)]
  const dir = tempDir({ after: (fn) => t.after(async () => fn()) }, 'penumbra-canary-prom-')
  const port = await freePort()
  const api = `http://127.0.0.1:${port}`
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
    scrape_configs: [{ job_name: 'penumbra', static_configs: [{ targets: apps.map((a) => `127.0.0.1:${a.adminPort}`) }] }]
  }
  writeFileSync(join(dir, 'prometheus.yml'), JSON.stringify(config))
  const prom = new Daemon(PROMETHEUS.path(), [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'])
  t.after(async () => { await prom.stop(); for (const a of apps) await a.stop(); await base.close(); await cand.close() })
  await waitForValue(async () => {
    if (!prom.running) throw new Error(`prometheus exited: ${prom.output.slice(-2000)}`)
    const r = await fetch(`${api}/api/v1/query?query=${encodeURIComponent('sum(up{job="penumbra"})')}`, { signal: AbortSignal.timeout(1000) })
    const body = await r.json() as { data?: { result: Array<{ value: [number, string] }> } }
    return Number(body.data?.result[0]?.value[1] ?? 0) === 2 ? true : undefined
  }, 30_000, 'prometheus scraping both replicas', 250)
  return { apps, base, api }
}

/** Client traffic spread over both replicas until `stop()` (bounded in count). */
function traffic (apps: Penumbra[]): { stop: () => Promise<number> } {
  const agent = new Agent({ connections: 8 })
  let running = true
  let sent = 0
  const loops = Array.from({ length: 4 }, async (_, k) => {
    while (running && sent < 40_000) {
      const app = apps[(sent + k) % apps.length]!
      const r = await request(`${urls(app).proxy}/v1/models/m:predict`, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"instances":[[${sent}]]}` })
      await r.body.text()
      sent++
    }
  })
  return { stop: async () => { running = false; await Promise.all(loops); await agent.close(); return sent } }
}

async function canaryOf (app: Penumbra): Promise<{ phase: string, weight: number, decisions: Array<{ action: string, who: string }> }> {
  return await (await request(`${urls(app).admin}/canary`, { headers: AUTH })).body.json() as { phase: string, weight: number, decisions: Array<{ action: string, who: string }> }
}

test('external controller: a healthy candidate ramps on both replicas and is promoted on both', { skip: PROMETHEUS.skip, timeout: 120_000 }, async (t) => {
  const cand = await model('cand')
  const { apps, api } = await stack(t, cand)
  const load = traffic(apps)
  const seen: string[] = []
  const r = await runExternalCanary({ prometheus: api, admins: apps.map((a) => urls(a).admin), token: TOKEN, selector: 'job="penumbra"', log: createLogger({ level: 'silent' }), onDecision: (d) => seen.push(d.action) })
  await load.stop()
  assert.equal(r.phase, 'promoted', JSON.stringify(r.decisions.map((d) => d.summary), null, 1))
  assert.deepEqual(seen.filter((a) => a !== 'hold'), ['start', 'advance', 'promote'])
  const advance = r.decisions.find((d) => d.action === 'advance')!
  assert.match(advance.gates.find((g) => g.gate === 'errorRate')!.text, /^errorRate: pass — candidate 0% vs baseline 0% \(difference 0%, 95% always-valid CI \[.+\], n = \d+\/\d+\), within maxIncrease 20%$/)
  for (const app of apps) {
    const c = await canaryOf(app)
    assert.equal(c.phase, 'promoted')
    assert.ok(c.decisions.every((d) => d.action === 'set'), 'the replica decided nothing itself')
    const p = await (await request(`${urls(app).admin}/primary`, { headers: AUTH })).body.json() as { backend: string }
    assert.equal(p.backend, 'cand', 'promoted on every replica')
  }
})

test('external controller: a failing candidate is rolled back on both replicas (weight 0 everywhere)', { skip: PROMETHEUS.skip, timeout: 120_000 }, async (t) => {
  const cand = await model('cand', (i) => i % 2 === 0)
  const { apps, api } = await stack(t, cand)
  const load = traffic(apps)
  const r = await runExternalCanary({ prometheus: api, admins: apps.map((a) => urls(a).admin), token: TOKEN, selector: 'job="penumbra"', log: createLogger({ level: 'silent' }) })
  await load.stop()
  assert.equal(r.phase, 'rolled_back', JSON.stringify(r.decisions.map((d) => d.summary), null, 1))
  const last = r.decisions.at(-1)!
  assert.equal(last.action, 'rollback')
  assert.match(last.gates.find((g) => g.gate === 'errorRate')!.text, /^errorRate: fail — candidate [\d.]+% vs baseline 0%/)
  for (const app of apps) {
    const c = await canaryOf(app)
    assert.deepEqual([c.phase, c.weight], ['rolled_back', 0])
    assert.equal(app.runtime.snapshot.canary, null, 'nothing is split any more')
  }
})

/** `penumbra --workers 2` as a child, in front of models `base` and `cand`, with `canary` (YAML flow). */
async function clusterCanary (t: { after: (fn: () => unknown) => void }, canary: string, extra = ''): Promise<{ port: number, admin: string }> {
  const base = await model('base')
  const cand = await model('cand')
  t.after(async () => { await base.close(); await cand.close() })
  const dir = tempDir({ after: (fn) => t.after(async () => fn()) })
  const port = await freePort()
  const adminPort = await freePort()
  const file = writeFile(dir, 'cluster.yaml', childConfigYaml({
    port,
    adminPort,
    primary: base.url,
    extra: `backends: { cand: { url: "${cand.url}" } }\n${extra}canary: ${canary}\n`
  }))
  const child = await spawnPenumbra(file, { port, adminPort, extra: ['--workers', '2'], readyTimeoutMs: 15_000 })
  t.after(() => child.kill())
  return { port, admin: `http://127.0.0.1:${adminPort}` }
}

test('--workers 2 with controller: external: PUT /canary/weight and abort reach every worker', { timeout: 60_000 }, async (t) => {
  const { port, admin } = await clusterCanary(t, '{ candidate: cand, controller: external }')
  await waitForValue(async () => {
    const r = await request(`${admin}/report`)
    const body = await r.body.json() as { workers?: number }
    return r.statusCode === 200 && body.workers === 2 ? true : undefined
  }, 15_000, 'both workers to answer the admin')
  const agent = new Agent({ connections: 8, pipelining: 0 })
  t.after(async () => { await agent.close() })
  const served = async (n: number): Promise<Set<string>> => {
    const out = new Set<string>()
    for (let i = 0; i < n; i++) {
      // A new connection each time, so the kernel spreads them over both workers.
      const r = await request(`http://127.0.0.1:${port}/p`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: '{}' })
      out.add((await r.body.json() as { from: string }).from)
    }
    return out
  }
  assert.deepEqual(await served(20), new Set(['base']))
  const put = await request(`${admin}/canary/weight`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ weight: 1, phase: 'step', step: 1 }) })
  assert.equal(put.statusCode, 200, await put.body.text())
  assert.deepEqual(await served(30), new Set(['cand']), 'every worker routes by the weight')
  const s = await (await request(`${admin}/canary`)).body.json() as { weight: number, state: string }
  assert.deepEqual([s.weight, s.state], [1, 'step 1 of 5'])
  const abort = await request(`${admin}/canary/abort`, { method: 'POST' })
  assert.equal(abort.statusCode, 200, await abort.body.text())
  assert.deepEqual(await served(30), new Set(['base']), 'abort reaches every worker')
  const start = await request(`${admin}/canary/start`, { method: 'POST' })
  assert.equal(start.statusCode, 409, 'the external controller drives it')
  await start.body.text()
})

test('--workers 2 with controller: internal: the controller runs in the cluster primary on both workers\' counters and promotes', { timeout: 90_000 }, async (t) => {
  const { port, admin } = await clusterCanary(t,
    '{ candidate: cand, steps: [50, 100], intervalMs: 300, minRequests: 30, maxHolds: 1000, autoStart: true, gates: { errorRate: { maxIncrease: 0.2 }, disagreement: { max: 0.3 } } }',
    'compare: { ignore: [/from] }\n')
  let status: { phase: string, state: string, decisions: Array<{ action: string, gates: Array<{ text: string }> }> } | null = null
  for (let round = 0; round < 300; round++) {
    status = await (await request(`${admin}/canary`)).body.json() as typeof status
    if (status!.phase === 'promoted' || status!.phase === 'rolled_back') break
    await Promise.all(Array.from({ length: 20 }, async () => {
      // New connections, so the kernel spreads them over both workers.
      const r = await request(`http://127.0.0.1:${port}/v1/models/m:predict`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: '{"instances":[[1]]}' })
      await r.body.text()
    }))
  }
  assert.equal(status!.phase, 'promoted', JSON.stringify(status, null, 1).slice(0, 3000))
  assert.deepEqual(status!.decisions.map((d) => d.action).filter((a) => a !== 'hold'), ['start', 'advance', 'promote'])
  const p = await (await request(`${admin}/primary`)).body.json() as { backend: string }
  assert.equal(p.backend, 'cand', 'promoted in every worker')
  const metrics = await (await request(`${admin}/metrics`)).body.text()
  assert.equal(metrics.split('\n').filter((l) => l.startsWith('# HELP penumbra_canary_state ')).length, 1, 'one family: the primary\'s')
  assert.match(metrics, /penumbra_canary_state\{canary="cand",state="promoted"\} 1/)
  // Both workers served the canary's traffic (their counters were summed).
  const report = await (await request(`${admin}/report`)).body.json() as { workers: number }
  assert.equal(report.workers, 2)
})
