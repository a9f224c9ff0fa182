import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { startPenumbra, startUpstream, urls, waitFor, type Upstream } from './helpers/servers.js'
import type { Penumbra } from '../src/index.js'

// End-to-end diffing (issue #4): real primary and shadow servers on loopback, penumbra in the
// middle; what the admin API and /metrics say after known disagreements.

type Predict = (instance: number[], i: number) => unknown

function kserveModel (predict: Predict, extra: () => Record<string, unknown> = () => ({})): (req: any, res: any, body: Buffer) => void {
  return (_req, res, body) => {
    const doc = JSON.parse(body.toString('utf8')) as { instances: number[][] }
    const text = JSON.stringify({ ...extra(), predictions: doc.instances.map(predict) })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }
}

const label = (x: number[]): string => (x[0]! > 5 ? 'big' : 'small')

async function setup (t: { after: (fn: () => Promise<void>) => void }, shadowPredict: Predict, config: Record<string, unknown> = {}, extra?: () => Record<string, unknown>): Promise<{ app: Penumbra, proxy: string, admin: string, primary: Upstream, shadow: Upstream }> {
  const primary = await startUpstream(kserveModel((x) => ({ label: label(x), scores: [x[0]! / 10, 1 - x[0]! / 10] }), extra))
  const shadow = await startUpstream(kserveModel(shadowPredict, extra))
  const app = await startPenumbra({
    primary: { url: primary.url },
    shadows: [{ name: 'cand', url: shadow.url, sampleRate: 1 }],
    ...config
  })
  t.after(async () => { await app.stop(); await primary.close(); await shadow.close() })
  return { app, ...urls(app), primary, shadow }
}

async function predict (proxy: string, instances: number[][], headers: Record<string, string> = {}): Promise<string> {
  const r = await request(`${proxy}/v1/models/m:predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ instances })
  })
  return r.body.text()
}

async function json<T = any> (url: string): Promise<T> {
  const r = await request(url)
  return await r.body.json() as T
}

async function comparisons (admin: string): Promise<number> {
  const rep = await json(`${admin}/report`)
  return rep.shadows[0].comparisons.total as number
}

test('a batch of 4 with one flipped label: 1 request mismatch, 4 instances compared, 1 disagreement; Wilson intervals in /report', { timeout: 20_000 }, async (t) => {
  const { proxy, admin } = await setup(t, (x, i) => ({ label: i === 2 ? 'other' : label(x), scores: [x[0]! / 10, 1 - x[0]! / 10 + 1e-9] }))
  await predict(proxy, [[1, 0], [6, 0], [3, 0], [7, 0]])
  await predict(proxy, [[1, 0]])
  await waitFor(async () => await comparisons(admin) === 2, 5000, 'two comparisons')
  const rep = await json(`${admin}/report`)
  const s = rep.shadows[0]
  assert.equal(s.comparisons.mismatch, 1)
  assert.equal(s.comparisons.match, 1)
  assert.equal(s.disagreement.instances.compared, 5)
  assert.equal(s.disagreement.instances.disagreements, 1)
  // Wilson 95% for 1/2: centre 0.5, half-width 1.96*sqrt(0.25/2 + 1.96²/16)/(1 + 1.96²/2) ≈ 0.4057
  assert.ok(Math.abs(s.disagreement.requests.lower - 0.0945) < 1e-3, String(s.disagreement.requests.lower))
  assert.ok(Math.abs(s.disagreement.requests.upper - 0.9055) < 1e-3, String(s.disagreement.requests.upper))
  assert.deepEqual(s.topPaths, [{ path: '/predictions/*/label', count: 1 }])

  const metrics = await (await request(`${admin}/metrics`)).body.text()
  assert.match(metrics, /^penumbra_comparisons_total\{shadow="cand",outcome="mismatch"\} 1$/m)
  assert.match(metrics, /^penumbra_instances_compared_total\{shadow="cand"\} 5$/m)
  assert.match(metrics, /^penumbra_instance_disagreements_total\{shadow="cand"\} 1$/m)
  assert.match(metrics, /^penumbra_field_mismatches_total\{shadow="cand",path="\/predictions\/\*\/label"\} 1$/m)
  assert.match(metrics, /^penumbra_latency_delta_seconds_count\{shadow="cand"\} 2$/m)
  assert.match(metrics, /^penumbra_score_delta_count\{shadow="cand"\} 5$/m)
})

test('the mismatch inspector keeps the request and both bodies, redacted, and lists newest first', { timeout: 20_000 }, async (t) => {
  const { proxy, admin } = await setup(t, (x) => ({ label: 'never', scores: [0, 1] }), {
    compare: { mismatches: { redact: { headers: ['authorization', 'x-secret'], paths: ['/instances/*/1'] } } }
  })
  await predict(proxy, [[1, 42]], { authorization: 'Bearer top-secret', 'x-secret': 'hush', 'x-request-id': 'first-1' })
  await predict(proxy, [[2, 43]], { 'x-request-id': 'second-2' })
  await waitFor(async () => (await json<unknown[]>(`${admin}/mismatches`)).length === 2, 5000, 'two mismatches')
  const list = await json<Array<{ id: string, requestId: string, shadow: string }>>(`${admin}/mismatches?shadow=cand&limit=10`)
  assert.deepEqual(list.map((m) => m.requestId), ['second-2', 'first-1'])
  assert.deepEqual(await json(`${admin}/mismatches?shadow=nope`), [])
  const one = await json(`${admin}/mismatches/${list[1]!.id}`)
  const text = JSON.stringify(one)
  assert.ok(!text.includes('top-secret') && !text.includes('hush'), 'credentials never stored')
  assert.equal(one.request.headers.authorization, '[REDACTED]')
  assert.deepEqual(one.request.body, { instances: [[1, '[REDACTED]']] })
  assert.equal(one.primary.status, 200)
  assert.equal(one.primary.body.predictions[0].label, 'small')
  assert.equal(one.shadowResponse.body.predictions[0].label, 'never')
  assert.ok(one.differences.some((d: { path: string, kind: string }) => d.path === '/predictions/0/label' && d.kind === 'value'))
  const missing = await request(`${admin}/mismatches/does-not-exist`)
  assert.equal(missing.statusCode, 404)
  await missing.body.dump()
})

test('shadow errors and timeouts are outcomes, not mismatches; unparseable shadow bodies are counted as such', { timeout: 20_000 }, async (t) => {
  const primary = await startUpstream(kserveModel((x) => ({ label: label(x) })))
  const garbage = await startUpstream((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"predictions": [ not json') })
  const slow = await startUpstream((_req, res) => { setTimeout(() => { res.writeHead(200); res.end('{}') }, 2000).unref() })
  const app = await startPenumbra({
    primary: { url: primary.url },
    shadows: [
      { name: 'garbage', url: garbage.url },
      { name: 'slow', url: slow.url, timeoutMs: 100 },
      { name: 'down', url: 'http://127.0.0.1:1' }
    ]
  })
  t.after(async () => { await app.stop(); await primary.close(); await garbage.close(); await slow.close() })
  const { proxy, admin } = urls(app)
  const body = await predict(proxy, [[6, 1]])
  assert.deepEqual(JSON.parse(body), { predictions: [{ label: 'big' }] })
  await waitFor(async () => {
    const rep = await json(`${admin}/report`)
    return rep.shadows.every((s: any) => s.comparisons.total === 1)
  }, 5000, 'one comparison per shadow')
  const rep = await json(`${admin}/report`)
  const by = Object.fromEntries(rep.shadows.map((s: any) => [s.shadow, s.comparisons]))
  assert.equal(by.garbage.unparseable, 1)
  assert.equal(by.slow.shadow_timeout, 1)
  assert.equal(by.down.shadow_error, 1)
  for (const s of Object.values(by) as any[]) assert.equal(s.mismatch, 0)
})

test('noise cancellation: a field that changes on every primary call becomes noisy and stops making mismatches; a real label difference still counts', { timeout: 30_000 }, async (t) => {
  let flip = false
  const { proxy, admin } = await setup(t, (x) => ({ label: flip ? 'flipped' : label(x), scores: [x[0]! / 10, 1 - x[0]! / 10] }), {
    compare: { noise: { enabled: true, sampleRate: 1, minSamples: 50 } }
  }, () => ({ id: randomUUID(), created: `${new Date().toISOString()}#${Math.random()}` }))
  for (let i = 0; i < 10; i++) await predict(proxy, [[i, 1]])
  await waitFor(async () => await comparisons(admin) === 10, 5000, 'ten comparisons')
  const noise = await json(`${admin}/noise`)
  assert.ok(noise.samples >= 3, JSON.stringify(noise))
  const noisy = noise.paths.filter((p: any) => p.noisy).map((p: any) => p.path).sort()
  assert.deepEqual(noisy, ['/created', '/id'])

  // After learning, responses differing only in those fields match.
  const before = (await json(`${admin}/report`)).shadows[0].comparisons
  for (let i = 0; i < 5; i++) await predict(proxy, [[i, 2]])
  await waitFor(async () => await comparisons(admin) === 15, 5000, 'fifteen comparisons')
  const after = (await json(`${admin}/report`)).shadows[0].comparisons
  assert.equal(after.mismatch - before.mismatch, 0, 'noise-only differences are not mismatches')

  // A label the primary never varies on is never noise.
  flip = true
  await predict(proxy, [[3, 3]])
  await waitFor(async () => await comparisons(admin) === 16, 5000, 'sixteen comparisons')
  assert.equal((await json(`${admin}/report`)).shadows[0].comparisons.mismatch - after.mismatch, 1)
})

test('penumbra_field_mismatches_total keeps at most 100 paths per shadow; the rest count as "other"', { timeout: 30_000 }, async (t) => {
  const primary = await startUpstream((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{}') })
  let n = 0
  const shadow = await startUpstream((_req, res) => {
    // 30 new top-level keys per response: 150 distinct paths over 5 requests.
    const doc: Record<string, number> = {}
    for (let i = 0; i < 30; i++) doc[`k${n++}`] = 1
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(doc))
  })
  const app = await startPenumbra({ primary: { url: primary.url }, shadows: [{ name: 'wide', url: shadow.url }], compare: { format: 'json' } })
  t.after(async () => { await app.stop(); await primary.close(); await shadow.close() })
  const { proxy, admin } = urls(app)
  for (let i = 0; i < 5; i++) await (await request(`${proxy}/x`, { method: 'POST', body: '{}' })).body.dump()
  await waitFor(async () => (await json(`${admin}/report`)).shadows[0].comparisons.total === 5, 5000, 'five comparisons')
  const metrics = await (await request(`${admin}/metrics`)).body.text()
  const series = metrics.split('\n').filter((l) => l.startsWith('penumbra_field_mismatches_total{shadow="wide"'))
  assert.equal(series.length, 101, 'at most 100 paths plus "other"')
  assert.ok(series.some((l) => l.includes('path="other"')))
})

test('JSONL sink: each mismatch is appended as one JSON line', { timeout: 20_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'penumbra-sink-'))
  const file = join(dir, 'mismatches.jsonl')
  const { app, proxy } = await setup(t, () => ({ label: 'x' }), { compare: { mismatches: { sink: file } } })
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  await predict(proxy, [[1, 1]])
  await predict(proxy, [[2, 2]])
  await waitFor(() => app.compare.store.size === 2, 5000, 'two stored mismatches')
  await app.compare.close()
  const lines = readFileSync(file, 'utf8').trim().split('\n')
  assert.equal(lines.length, 2)
  for (const l of lines) assert.equal(JSON.parse(l).shadow, 'cand')
})
