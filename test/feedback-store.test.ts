// Issue #19, prediction log and POST /feedback: the memory store (TTL, maxBytes, idempotency),
// joins by request id through a real proxy with a primary and a shadow, and bad input reported
// by index without losing the good items.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryStore } from '../src/feedback/memory-store.js'
import type { PredictionRecord } from '../src/feedback/prediction-store.js'
import { extractPredictions } from '../src/feedback/extract.js'
import { compileRedactions } from '../src/compare/redact.js'
import { feedbackRig } from './helpers/feedback-rig.js'
import { metricValue } from './helpers/shadow-util.js'

const rec = (label: string): PredictionRecord => ({ at: 0, served: 'm', models: { m: { role: 'primary', format: 'kserve-v1', instances: [{ label }] } } })

test('memory store: a record expires after ttlMs (then its id is "expired", not unknown)', async () => {
  let now = 1_000
  const s = new MemoryStore({ ttlMs: 5_000, maxBytes: 1 << 20, clock: { now: () => now } })
  await s.put('a', rec('cat'))
  assert.deepEqual((await s.getMany(['a']))[0], { record: rec('cat') })
  now += 4_999
  assert.ok((await s.getMany(['a']))[0]!.record !== null)
  now += 2
  assert.deepEqual(await s.getMany(['a', 'never']), [{ record: null, expired: true }, { record: null, expired: false }])
})

test('memory store: bounded by maxBytes; the evicted are "expired"', async () => {
  const s = new MemoryStore({ ttlMs: 60_000, maxBytes: 8 * 1024 })
  for (let i = 0; i < 500; i++) await s.put(`r${i}`, rec(`label-${i}`))
  assert.ok(s.size < 500 && s.size > 10, `size ${s.size}`)
  const [first, last] = await s.getMany(['r0', 'r499'])
  assert.deepEqual(first, { record: null, expired: true })
  assert.ok(last!.record !== null)
})

test('memory store: swapLabels returns the previous label (idempotency)', async () => {
  const s = new MemoryStore({ ttlMs: 60_000, maxBytes: 1 << 20 })
  assert.deepEqual(await s.swapLabels([{ key: 'k', label: 'l:cat' }]), [null])
  assert.deepEqual(await s.swapLabels([{ key: 'k', label: 'l:cat' }, { key: 'k2', label: 'v:1' }]), ['l:cat', null])
  assert.deepEqual(await s.swapLabels([{ key: 'k', label: 'l:dog' }]), ['l:cat'])
})

test('extraction: labels, scores, values, OIP v2 rows, LLM text; redacted paths never kept', () => {
  const none = compileRedactions([])
  assert.deepEqual(extractPredictions('auto', '/v1/models/m:predict', { predictions: [{ label: 'cat', scores: [0.9, 0.1], latency_ms: 3 }, 2.5, [0.2, 0.8]] }, none)?.instances,
    [{ label: 'cat', scores: [0.9, 0.1] }, { value: 2.5 }, { label: '1', scores: [0.2, 0.8] }])
  const oip = { outputs: [{ name: 'label', shape: [2], datatype: 'BYTES', data: ['a', 'b'] }, { name: 'probabilities', shape: [2, 2], datatype: 'FP32', data: [0.6, 0.4, 0.1, 0.9] }] }
  assert.deepEqual(extractPredictions('auto', '/v2/models/m/infer', oip, none)?.instances, [{ label: 'a', scores: [0.6, 0.4] }, { label: 'b', scores: [0.1, 0.9] }])
  const chat = { choices: [{ index: 0, message: { role: 'assistant', content: 'Paris is the capital.' }, finish_reason: 'stop' }] }
  assert.deepEqual(extractPredictions('auto', '/v1/chat/completions', chat, none)?.instances, [{ text: 'Paris is the capital.' }])
  const redacted = extractPredictions('auto', '/v1/models/m:predict', { predictions: [{ label: 'secret-person', scores: [0.1, 0.9] }] }, compileRedactions(['/predictions/*/label']))
  assert.deepEqual(redacted?.instances, [{ label: '1', scores: [0.1, 0.9] }])
  assert.equal(JSON.stringify(redacted).includes('secret-person'), false)
})

test('POST /feedback: joined, duplicate, replaced (never double-counted); quality per model and paired', { timeout: 30_000 }, async (t) => {
  const r = await feedbackRig(t)
  await r.predict('req-1', [{ p: 'cat', s: 'dog' }, { p: 'dog', s: 'dog' }])
  await r.predict('req-2', [{ p: 'cat', s: 'cat' }])
  await r.logged(3)

  const first = await r.post([{ requestId: 'req-1', instance: 0, label: 'cat' }, { requestId: 'req-1', instance: 1, label: 'dog', source: 'annotator' }, { requestId: 'req-2', label: 'dog' }])
  assert.equal(first.status, 200)
  assert.deepEqual(first.json.counts, { joined: 3, unknown: 0, expired: 0, duplicate: 0, invalid: 0 })
  const again = await r.post({ requestId: 'req-1', instance: 0, label: 'cat' })
  assert.deepEqual(again.json.results, [{ index: 0, result: 'duplicate' }])

  let q = await r.quality()
  const primary = q.models.find((m: any) => m.model === 'primary')
  const cand = q.models.find((m: any) => m.model === 'cand')
  assert.equal(primary.role, 'primary')
  assert.equal(primary.accuracy.correct, 2) // req-1/0 cat ✓, req-1/1 dog ✓, req-2 cat ✗
  assert.equal(primary.labelled, 3)
  assert.equal(cand.accuracy.correct, 1) // dog ✗, dog ✓, cat ✗
  assert.ok(primary.accuracy.lower > 0 && primary.accuracy.upper < 1)
  const cat = primary.classes.find((c: any) => c.class === 'cat')
  assert.deepEqual([cat.precision.n, cat.recall.n], [2, 1]) // predicted cat twice, one true cat
  const pair = q.paired[0]
  assert.deepEqual([pair.primary, pair.shadow, pair.n, pair.discordant.primaryOnly, pair.discordant.shadowOnly], ['primary', 'cand', 3, 1, 0])
  assert.equal(pair.test, 'mcnemar-exact')
  assert.equal(pair.verdict, 'no_difference_detected')
  assert.match(pair.summary, /was right on 33\.3% fewer of the 3 labelled requests/)
  assert.deepEqual(q.coverage.bySource, { user: { labelled: 2, rate: 2 / 3, share: 2 / 3 }, annotator: { labelled: 1, rate: 1 / 3, share: 1 / 3 } })
  assert.ok('drift' in q && 'assertions' in q)

  // The user changes their mind on req-2: replaced, so still 3 labelled, now 3 correct for the primary.
  const changed = await r.post({ requestId: 'req-2', label: 'cat' })
  assert.deepEqual(changed.json.results, [{ index: 0, result: 'joined', replaced: true }])
  q = await r.quality()
  assert.equal(q.models.find((m: any) => m.model === 'primary').accuracy.correct, 3)
  assert.equal(q.models.find((m: any) => m.model === 'primary').labelled, 3)
  assert.equal(r.app.feedback.accuracy('primary').labelled, 3)

  const m = await r.metrics()
  assert.equal(metricValue(m, 'penumbra_feedback_total', { result: 'joined' }), 4)
  assert.equal(metricValue(m, 'penumbra_feedback_total', { result: 'duplicate' }), 1)
  assert.equal(metricValue(m, 'penumbra_feedback_labelled_total', { model: 'primary' }), 3)
  assert.equal(metricValue(m, 'penumbra_feedback_correct_total', { model: 'cand' }), 1)
  assert.equal(metricValue(m, 'penumbra_feedback_class_total', { model: 'cand', class: 'dog', outcome: 'fp' }), 1)
})

test('POST /feedback: regression labels give MAE and RMSE with intervals', { timeout: 30_000 }, async (t) => {
  const r = await feedbackRig(t)
  const errs = [1, -2, 0.5, 3]
  for (let i = 0; i < errs.length; i++) await r.predict(`reg-${i}`, [{ p: 10 + errs[i]!, s: 10 }])
  await r.logged(errs.length)
  const res = await r.post(errs.map((_, i) => ({ requestId: `reg-${i}`, value: 10 })))
  assert.equal(res.json.counts.joined, 4)
  const q = await r.quality()
  const p = q.models.find((m: any) => m.model === 'primary').regression
  assert.equal(p.n, 4)
  assert.equal(p.mae.value, 6.5 / 4)
  assert.ok(Math.abs(p.rmse.value - Math.sqrt((1 + 4 + 0.25 + 9) / 4)) < 1e-12)
  assert.ok(p.mae.lower < p.mae.value && p.mae.upper > p.mae.value && p.rmse.lower <= p.rmse.value)
  assert.equal(q.models.find((m: any) => m.model === 'cand').regression.mae.value, 0)
  const m = await r.metrics()
  assert.equal(metricValue(m, 'penumbra_feedback_abs_error_sum', { model: 'primary' }), 6.5)
  assert.equal(metricValue(m, 'penumbra_feedback_sq_error_sum', { model: 'primary' }), 14.25)
})

test('POST /feedback bad input: unknown and expired ids, wrong kinds, malformed NDJSON lines, oversized batches', { timeout: 30_000 }, async (t) => {
  const r = await feedbackRig(t, { feedback: { maxBytes: 4096 } })
  await r.predict('cls', [{ p: 'cat', s: 'cat' }])
  await r.predict('reg', [{ p: 1.5, s: 2 }])
  await r.logged(2)

  const res = await r.post([
    { requestId: 'cls', label: 'cat' },
    { requestId: 'nope', label: 'cat' },
    { requestId: 'cls', value: 3 },
    { requestId: 'reg', label: 'very good' },
    { requestId: 'cls', instance: 4, label: 'cat' },
    { requestId: 'cls', label: 'cat', source: 'oracle' },
    { requestId: 'cls', label: 'cat', value: 1 },
    'not an object',
    { requestId: 'reg', value: 1 }
  ])
  assert.equal(res.status, 200)
  assert.deepEqual(res.json.results.map((x: any) => x.result), ['joined', 'unknown', 'invalid', 'invalid', 'invalid', 'invalid', 'invalid', 'invalid', 'joined'])
  assert.match(res.json.results[2].message, /class label: send label, not value/)
  assert.match(res.json.results[3].message, /regression value: send value/)
  assert.match(res.json.results[4].message, /has 1 instance \(0\.\.0\), not 4/)
  assert.match(res.json.results[5].message, /^source: must be user, annotator or outcome/)

  // NDJSON: a malformed line is invalid at its index; the lines around it count.
  const nd = await r.post('{"requestId":"cls","label":"cat","source":"annotator"}\n{oops\n\n{"requestId":"nope2","label":"x"}\n', 'application/x-ndjson')
  assert.deepEqual(nd.json.results.map((x: any) => x.result), ['joined', 'invalid', 'unknown'])
  assert.equal(nd.json.results[1].message, 'line 2: not valid JSON')

  const big = await r.post(Array.from({ length: 10_001 }, () => ({ requestId: 'cls', label: 'cat' })))
  assert.equal(big.status, 413)
  assert.equal(big.json.error, 'PENUMBRA_BODY_TOO_LARGE')
  const junk = await r.post('{not json')
  assert.equal(junk.status, 400)

  // Expired: the 4 KiB log evicts the oldest once more requests are logged.
  for (let i = 0; i < 40; i++) await r.predict(`fill-${i}`, [{ p: 'cat', s: 'cat' }])
  await r.logged(42)
  const late = await r.post({ requestId: 'cls', label: 'dog', source: 'outcome' })
  assert.equal(late.json.results[0].result, 'expired')

  const m = await r.metrics()
  assert.equal(metricValue(m, 'penumbra_feedback_total', { result: 'invalid' }), 7)
  assert.equal(metricValue(m, 'penumbra_feedback_total', { result: 'unknown' }), 2)
  assert.equal(metricValue(m, 'penumbra_feedback_total', { result: 'expired' }), 1)
  // Still serving.
  await r.predict('after', [{ p: 'cat', s: 'cat' }])
})

test('experiment arms: the answering arm\'s prediction is logged and judged (no shadow involved)', { timeout: 30_000 }, async (t) => {
  const { startPenumbra, startUpstream, urls } = await import('./helpers/servers.js')
  const { scriptedModel } = await import('./helpers/feedback-rig.js')
  const { request } = await import('undici')
  const blue = await startUpstream(scriptedModel('p'))
  const green = await startUpstream(scriptedModel('s'))
  const app = await startPenumbra({
    backends: { blue: { url: blue.url }, green: { url: green.url } },
    primary: 'blue',
    experiments: [{ name: 'ab', unit: 'header:x-user', variants: [{ name: 'control', backend: 'blue' }, { name: 'treatment', backend: 'green' }] }]
  })
  t.after(async () => { await app.stop(); await blue.close(); await green.close() })
  const { proxy, admin } = urls(app)
  const arms = new Map<string, string>()
  for (let i = 0; i < 30; i++) {
    const r = await request(`${proxy}/v1/models/m:predict`, { method: 'POST', body: JSON.stringify({ instances: [{ p: 'cat', s: 'dog' }] }), headers: { 'x-user': `u${i}`, 'x-request-id': `arm-${i}` } })
    await r.body.text()
    arms.set(`arm-${i}`, String(r.headers['x-penumbra-experiment']))
  }
  const { waitFor } = await import('./helpers/common.js')
  const { scrape } = await import('./helpers/shadow-util.js')
  await waitFor(async () => {
    const m = await scrape(app)
    return metricValue(m, 'penumbra_feedback_predictions_total', { model: 'blue' }) + metricValue(m, 'penumbra_feedback_predictions_total', { model: 'green' }) >= 30
  }, 10_000, 'arm predictions logged')
  const res = await request(`${admin}/feedback`, { method: 'POST', body: JSON.stringify([...arms.keys()].map((requestId) => ({ requestId, label: 'cat' }))) })
  const body = await res.body.json() as any
  assert.equal(body.counts.joined, 30)
  const q = await (await request(`${admin}/quality`)).body.json() as any
  const blueQ = q.models.find((m: any) => m.model === 'blue')
  const greenQ = q.models.find((m: any) => m.model === 'green')
  const nBlue = [...arms.values()].filter((v) => v === 'ab=control').length
  assert.ok(nBlue > 0 && nBlue < 30, `both arms used (${nBlue} control)`)
  assert.equal(blueQ.role, 'arm')
  assert.deepEqual([blueQ.labelled, blueQ.accuracy.correct], [nBlue, nBlue])
  assert.deepEqual([greenQ.labelled, greenQ.accuracy.correct], [30 - nBlue, 0])
  assert.deepEqual(q.paired, []) // arms answer different requests: no paired comparison
})

test('feedback config: defaults, and every bad key named (exit 2 before listening); redis password redacted in GET /config', async () => {
  const { validateConfig, ConfigError } = await import('../src/index.js')
  const { redactConfig } = await import('../src/config/load.js')
  const P = { url: 'http://127.0.0.1:9001' }
  const c = validateConfig({ primary: P })
  assert.deepEqual({ ...c.feedback, redis: undefined }, { sampleRate: 1, routes: [], store: 'memory', ttlMs: 86_400_000, maxBytes: 64 * 1024 * 1024, redis: undefined, minCoverage: 0.01, classes: [], confidence: 0.95 })
  try {
    validateConfig({ primary: P, feedback: { store: 'postgres', sampleRate: 2, redis: { url: 'http://x' }, routes: [{ paths: ['nope'], sampleRate: 0.5 }], ttlMs: 5, sampleRat: 1 } })
    assert.fail('expected invalid')
  } catch (err) {
    assert.ok(err instanceof ConfigError)
    const text = err.problems.join('\n')
    for (const key of ['feedback.store', 'feedback.sampleRate', 'feedback.redis.url', 'feedback.routes[0].paths[0]', 'feedback.ttlMs', 'feedback.sampleRat: unknown key (did you mean']) assert.ok(text.includes(key), `${key} in ${text}`)
  }
  const r = validateConfig({ primary: P, feedback: { store: 'redis', redis: { url: 'redis://user:s3cret@redis:6379/0' } } })
  assert.equal(JSON.stringify(redactConfig(r)).includes('s3cret'), false)
})

test('POST /feedback needs the admin token when one is set; GET /quality too (protected reads)', { timeout: 30_000 }, async (t) => {
  const { request } = await import('undici')
  const r = await feedbackRig(t, { admin: { host: '127.0.0.1', port: 0, token: 'feedback-token-1' } })
  const noToken = await request(`${r.admin}/feedback`, { method: 'POST', body: '{"requestId":"a","label":"x"}' })
  assert.equal(noToken.statusCode, 401)
  assert.equal((await noToken.body.json() as { error: string }).error, 'PENUMBRA_UNAUTHORIZED')
  const read = await request(`${r.admin}/quality`)
  await read.body.text()
  assert.equal(read.statusCode, 401)
  const ok = await r.post({ requestId: 'a', label: 'x' }) // the rig sends the token
  assert.equal(ok.status, 200)
  assert.equal(ok.json.results[0].result, 'unknown')
})

test('per-route sample rates; compare.mismatches.redact.paths applies to what is logged', { timeout: 30_000 }, async (t) => {
  const { request } = await import('undici')
  const r = await feedbackRig(t, {
    feedback: { routes: [{ paths: ['/v1/models/private:predict'], sampleRate: 0 }] },
    compare: { mismatches: { redact: { paths: ['/predictions/*/label'] } } }
  })
  for (const path of ['/v1/models/private:predict', '/v1/models/m:predict']) {
    const res = await request(`${r.proxy}${path}`, { method: 'POST', body: JSON.stringify({ instances: [{ p: 'alice-smith', s: 'bob' }] }), headers: { 'x-request-id': path.includes('private') ? 'priv' : 'pub' } })
    await res.body.text()
  }
  await r.logged(1)
  const [priv, pub] = await r.app.feedback.store.getMany(['priv', 'pub'])
  assert.deepEqual(priv, { record: null, expired: false }) // sampleRate 0 on that route: never logged
  assert.ok(pub!.record !== null)
  // The label was redacted before extraction: the argmax of the scores is what is kept.
  assert.deepEqual(pub!.record.models.primary!.instances, [{ label: '1', scores: [0.3, 0.7] }])
  assert.equal(JSON.stringify(pub!.record).includes('alice-smith'), false)
  assert.equal(r.app.feedback.rateFor('POST', '/v1/models/private:predict?x=1'), 0)
  assert.equal(r.app.feedback.rateFor('POST', '/v1/models/m:predict'), 1)
})
