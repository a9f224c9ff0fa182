// Issue #19, "counters so Prometheus can compute the same across replicas": two penumbra
// instances share one real redis-server; predictions are made on both and labels posted to both;
// a real Prometheus scraping both computes, from the summed counters, the accuracy, MAE and
// coverage that the two instances' GET /quality tallies give when added together.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { Daemon, PROMETHEUS, freePort, tempDir, waitForValue } from './helpers/observability-harness.js'
import { waitFor } from './helpers/common.js'
import { startPenumbra, startUpstream, urls } from './helpers/servers.js'
import { metricValue, scrape } from './helpers/shadow-util.js'
import { scriptedModel } from './helpers/feedback-rig.js'
import type { Penumbra } from '../src/index.js'

test('Prometheus over two replicas computes the same accuracy and MAE as their merged GET /quality', { skip: PROMETHEUS.skip, timeout: 120_000 }, async (t) => {
  const redisPort = await freePort()
  const redis: ChildProcess = spawn(process.env.REDIS_SERVER ?? 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let redisOut = ''
  redis.stdout!.on('data', (c: Buffer) => { redisOut += c.toString() })
  t.after(async () => { if (redis.exitCode === null) { redis.kill('SIGKILL'); await once(redis, 'exit') } })
  await waitFor(() => redisOut.includes('Ready to accept connections'), 10_000, 'redis ready')

  const primary = await startUpstream(scriptedModel('p'))
  const shadow = await startUpstream(scriptedModel('s'))
  const cfg = {
    backends: { primary: { url: primary.url } },
    primary: 'primary',
    shadows: [{ name: 'cand', url: shadow.url }],
    feedback: { store: 'redis', redis: { url: `redis://127.0.0.1:${redisPort}` } }
  }
  const a = await startPenumbra(cfg)
  const b = await startPenumbra(cfg)
  t.after(async () => { await a.stop(); await b.stop(); await primary.close(); await shadow.close() })
  const ready = (app: Penumbra): boolean => (app.feedback.store as unknown as { ready: boolean }).ready
  await waitFor(() => ready(a) && ready(b), 10_000, 'both connected to redis')

  const dir = tempDir(t, 'penumbra-prom-fb-')
  const port = await freePort()
  const api = `http://127.0.0.1:${port}`
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '900ms' },
    scrape_configs: [{ job_name: 'penumbra', static_configs: [{ targets: [`127.0.0.1:${a.adminPort}`, `127.0.0.1:${b.adminPort}`] }] }]
  }
  writeFileSync(join(dir, 'prometheus.yml'), JSON.stringify(config))
  const prom = new Daemon(PROMETHEUS.path(), [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'])
  t.after(async () => { await prom.stop() })
  const scalar = async (q: string): Promise<number | undefined> => {
    const r = await (await fetch(`${api}/api/v1/query?query=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(5000) })).json() as { data?: { result?: Array<{ value: [number, string] }> } }
    const v = r.data?.result?.[0]?.value?.[1]
    return v === undefined ? undefined : Number(v)
  }
  await waitForValue(async () => (prom.running ? ((await fetch(`${api}/-/ready`).catch(() => null))?.status === 200 ? true : undefined) : Promise.reject(new Error(prom.output))), 30_000, 'prometheus ready', 250)

  const predict = async (app: Penumbra, id: string, instances: Array<{ p: unknown, s: unknown }>): Promise<void> => {
    const r = await request(`${urls(app).proxy}/v1/models/m:predict`, { method: 'POST', body: JSON.stringify({ instances }), headers: { 'x-request-id': id } })
    await r.body.text()
  }
  // 12 classification requests (6 on each replica), 4 regression requests; labels posted crosswise.
  const labels: Array<{ app: Penumbra, item: Record<string, unknown> }> = []
  for (let i = 0; i < 12; i++) {
    const app = i % 2 === 0 ? a : b
    await predict(app, `c-${i}`, [{ p: i % 3 === 0 ? 'dog' : 'cat', s: i % 4 === 0 ? 'dog' : 'cat' }])
    labels.push({ app: i % 3 === 0 ? a : b, item: { requestId: `c-${i}`, label: 'cat' } })
  }
  for (let i = 0; i < 4; i++) {
    await predict(i < 2 ? a : b, `r-${i}`, [{ p: 10 + i, s: 10 }])
    labels.push({ app: i % 2 === 0 ? b : a, item: { requestId: `r-${i}`, value: 10 } })
  }
  await waitFor(async () => metricValue(await scrape(a), 'penumbra_feedback_predictions_total', { model: 'primary' }) + metricValue(await scrape(b), 'penumbra_feedback_predictions_total', { model: 'primary' }) >= 16, 10_000, 'all logged')
  for (const app of [a, b]) {
    const items = labels.filter((l) => l.app === app).map((l) => l.item)
    const r = await request(`${urls(app).admin}/feedback`, { method: 'POST', body: JSON.stringify(items) })
    assert.equal((await r.body.json() as { counts: { joined: number } }).counts.joined, items.length)
  }

  // The merged truth from both replicas' GET /quality.
  const qa = await (await request(`${urls(a).admin}/quality`)).body.json() as any
  const qb = await (await request(`${urls(b).admin}/quality`)).body.json() as any
  const tally = (q: any, model: string): { labelled: number, correct: number, mae: number, n: number } => {
    const m = q.models.find((x: any) => x.model === model)
    return { labelled: m?.accuracy === null || m === undefined ? 0 : m.labelled - (m.regression?.n ?? 0), correct: m?.accuracy?.correct ?? 0, mae: m?.regression === null || m === undefined ? 0 : m.regression.mae.value * m.regression.n, n: m?.regression?.n ?? 0 }
  }
  for (const model of ['primary', 'cand']) {
    const x = tally(qa, model)
    const y = tally(qb, model)
    const accuracy = (x.correct + y.correct) / (x.labelled + y.labelled)
    const mae = (x.mae + y.mae) / (x.n + y.n)
    assert.equal(x.labelled + y.labelled, 12)
    // The scripted models answer both kinds, so labelled_total holds both; a real model has one
    // kind and the ratio is simply correct / labelled.
    const fromProm = await waitForValue(async () => {
      const v = await scalar(`sum(penumbra_feedback_correct_total{model="${model}"}) / (sum(penumbra_feedback_labelled_total{model="${model}"}) - ${x.n + y.n})`)
      return v !== undefined && Math.abs(v - accuracy) < 1e-12 ? v : undefined
    }, 20_000, `${model} accuracy in Prometheus = ${accuracy}`, 250)
    assert.ok(Math.abs(fromProm - accuracy) < 1e-12)
    const maeProm = await waitForValue(async () => {
      const v = await scalar(`sum(penumbra_feedback_abs_error_sum{model="${model}"}) / ${x.n + y.n}`)
      return v !== undefined && Math.abs(v - mae) < 1e-12 ? v : undefined
    }, 20_000, `${model} MAE in Prometheus = ${mae}`, 250)
    assert.ok(Math.abs(maeProm - mae) < 1e-12)
  }
})
