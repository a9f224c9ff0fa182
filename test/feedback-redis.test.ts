// Issue #19, the shared prediction log: two penumbra instances share one real redis-server
// (started here on a free port, no persistence). A label posted to either joins a prediction
// logged by the other, a repeat on the other is a duplicate, an expired key says so, and a Redis
// killed mid-test never touches the client path: predictions are dropped and counted, POST
// /feedback answers 503, and both recover by themselves once Redis is back.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { request } from 'undici'
import { createClient } from 'redis'
import { freePort, waitFor } from './helpers/common.js'
import { startPenumbra, startUpstream, urls } from './helpers/servers.js'
import { metricValue, scrape } from './helpers/shadow-util.js'
import { scriptedModel } from './helpers/feedback-rig.js'
import type { Penumbra } from '../src/index.js'

const REDIS = process.env.REDIS_SERVER ?? 'redis-server'

async function startRedis (port: number): Promise<ChildProcess> {
  const child = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (c: Buffer) => { out += c.toString() })
  await waitFor(() => out.includes('Ready to accept connections') || child.exitCode !== null, 10_000, 'redis-server ready')
  if (child.exitCode !== null) throw new Error(`redis-server exited: ${out}`)
  return child
}

async function stopRedis (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGKILL')
  await once(child, 'exit')
}

test('redis store: joins across two instances, idempotent across them, TTL expiry, Redis killed and back', { timeout: 90_000 }, async (t) => {
  const port = await freePort()
  let redis = await startRedis(port)
  const primary = await startUpstream(scriptedModel('p'))
  const shadow = await startUpstream(scriptedModel('s'))
  const url = `redis://127.0.0.1:${port}`
  const cfg = {
    backends: { primary: { url: primary.url } },
    primary: 'primary',
    shadows: [{ name: 'cand', url: shadow.url }],
    feedback: { store: 'redis', redis: { url, keyPrefix: 'test:' } }
  }
  const a = await startPenumbra(cfg)
  const b = await startPenumbra(cfg)
  const probe = createClient({ url })
  probe.on('error', () => {})
  await probe.connect()
  t.after(async () => {
    await a.stop(); await b.stop()
    await probe.close().catch(() => {})
    await stopRedis(redis)
    await primary.close(); await shadow.close()
  })
  const ready = (app: Penumbra): boolean => (app.feedback.store as unknown as { ready: boolean }).ready
  await waitFor(() => ready(a) && ready(b), 10_000, 'both connected to redis')

  const predict = async (app: Penumbra, id: string, instances: Array<{ p: unknown, s: unknown }>): Promise<number> => {
    const r = await request(`${urls(app).proxy}/v1/models/m:predict`, { method: 'POST', body: JSON.stringify({ instances }), headers: { 'x-request-id': id } })
    await r.body.text()
    return r.statusCode
  }
  const post = async (app: Penumbra, body: unknown): Promise<{ status: number, json: any }> => {
    const r = await request(`${urls(app).admin}/feedback`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
    return { status: r.statusCode, json: await r.body.json() }
  }
  const metric = async (app: Penumbra, name: string, labels: Record<string, string>): Promise<number> => metricValue(await scrape(app), name, labels)

  // Predicted on A, labelled on B.
  assert.equal(await predict(a, 'x-1', [{ p: 'cat', s: 'dog' }]), 200)
  assert.equal(await predict(a, 'x-2', [{ p: 'dog', s: 'dog' }]), 200)
  await waitFor(async () => await metric(a, 'penumbra_feedback_predictions_total', { model: 'primary' }) >= 2, 10_000, 'logged on A')
  const first = await post(b, [{ requestId: 'x-1', label: 'cat' }, { requestId: 'x-2', label: 'dog' }])
  assert.deepEqual(first.json.counts, { joined: 2, unknown: 0, expired: 0, duplicate: 0, invalid: 0 })
  // The same label posted to A: the label lives in Redis, so A sees the repeat.
  const repeat = await post(a, { requestId: 'x-1', label: 'cat' })
  assert.equal(repeat.json.results[0].result, 'duplicate')
  const qb = await (await request(`${urls(b).admin}/quality`)).body.json() as any
  assert.equal(qb.models.find((m: any) => m.model === 'primary').accuracy.correct, 2)
  assert.equal(qb.paired[0].discordant.primaryOnly, 1)
  assert.equal(await metric(b, 'penumbra_feedback_labelled_total', { model: 'cand' }), 2)
  assert.equal(await metric(a, 'penumbra_feedback_labelled_total', { model: 'cand' }), 0)

  // TTL: the prediction's key expires (made to now, instead of waiting a day); its tombstone stays.
  assert.ok(await probe.pTTL('test:p:x-2') > 0)
  await probe.pExpire('test:p:x-2', 1)
  await waitFor(async () => await probe.exists('test:p:x-2') === 0, 5_000, 'key expired')
  const late = await post(b, [{ requestId: 'x-2', label: 'dog', source: 'annotator' }, { requestId: 'never', label: 'dog' }])
  assert.deepEqual(late.json.results.map((r: any) => r.result), ['expired', 'unknown'])

  // Redis dies: clients are served as before; predictions are dropped and counted; labels get 503.
  await stopRedis(redis)
  await waitFor(() => !ready(a) && !ready(b), 10_000, 'both saw redis go')
  for (let i = 0; i < 5; i++) assert.equal(await predict(a, `down-${i}`, [{ p: 'cat', s: 'cat' }]), 200)
  await waitFor(async () => await metric(a, 'penumbra_feedback_store_errors_total', { op: 'put' }) >= 5, 10_000, 'drops counted')
  const refused = await post(b, { requestId: 'x-1', label: 'cat' })
  assert.equal(refused.status, 503)
  assert.equal(refused.json.error, 'PENUMBRA_STORE_UNAVAILABLE')
  assert.equal(await metric(b, 'penumbra_feedback_store_errors_total', { op: 'get' }), 1)

  // Redis is back on the same port: both reconnect by themselves and joins work again.
  redis = await startRedis(port)
  await waitFor(() => ready(a) && ready(b), 20_000, 'both reconnected')
  assert.equal(await predict(b, 'back-1', [{ p: 'cat', s: 'dog' }]), 200)
  await waitFor(async () => await metric(b, 'penumbra_feedback_predictions_total', { model: 'primary' }) >= 1, 10_000, 'logged on B')
  const again = await post(a, { requestId: 'back-1', label: 'dog' })
  assert.equal(again.json.results[0].result, 'joined')
})

test('redis store never reachable: the proxy serves, predictions are dropped and counted, stop() is prompt', { timeout: 30_000 }, async () => {
  const port = await freePort() // nothing listens there
  const primary = await startUpstream(scriptedModel('p'))
  const shadow = await startUpstream(scriptedModel('s'))
  const app = await startPenumbra({
    backends: { primary: { url: primary.url } },
    primary: 'primary',
    shadows: [{ name: 'cand', url: shadow.url }],
    feedback: { store: 'redis', redis: { url: `redis://127.0.0.1:${port}` } }
  })
  try {
    for (let i = 0; i < 3; i++) {
      const r = await request(`${urls(app).proxy}/v1/models/m:predict`, { method: 'POST', body: JSON.stringify({ instances: [{ p: 'cat', s: 'cat' }] }) })
      assert.equal(r.statusCode, 200)
      assert.deepEqual(await r.body.json(), { predictions: [{ label: 'cat', scores: [0.3, 0.7], latency_ms: 3 }] })
    }
    await waitFor(async () => metricValue(await scrape(app), 'penumbra_feedback_store_errors_total', { op: 'put' }) >= 3, 10_000, 'drops counted')
    const res = await request(`${urls(app).admin}/feedback`, { method: 'POST', body: '{"requestId":"a","label":"cat"}' })
    assert.equal(res.statusCode, 503)
    assert.equal((await res.body.json() as { error: string }).error, 'PENUMBRA_STORE_UNAVAILABLE')
  } finally {
    await app.stop()
    await primary.close(); await shadow.close()
  }
})
