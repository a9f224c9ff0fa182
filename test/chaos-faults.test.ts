// Issue #20: every fault kind against real loopback backends (what the client and the shadow
// each receive), the blast-radius cap, expiry, shutdown, and model faults that keep the answer
// valid for its format.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Penumbra } from '../src/index.js'
import { startDemoModel } from '../src/demo/model-server.js'
import { startUpstream, testConfig, urls, waitFor, type Upstream } from './helpers/servers.js'
import { startFakeOpenAI } from './helpers/fake-openai.js'
import { createLogger } from '../src/log/logger.js'

const TOKEN = 'chaos-test-token'
const AUTH = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }
const LABELS = ['setosa', 'versicolor', 'virginica']

function portOf (s: Server): number {
  return (s.address() as AddressInfo).port
}

async function chaosApp (partial: Record<string, unknown>, chaos: Record<string, unknown> = {}): Promise<Penumbra> {
  const config = testConfig({ admin: { host: '127.0.0.1', port: 0, token: TOKEN }, chaos: { enabled: true, ...chaos }, ...partial })
  const app = new Penumbra(config, { logger: createLogger({ level: 'silent', sync: true }) })
  await app.start()
  return app
}

async function startExperiment (app: Penumbra, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const res = await fetch(`${urls(app).admin}/chaos/experiments`, { method: 'POST', headers: AUTH, body: JSON.stringify({ durationMs: 60_000, ...body }) })
  const json = await res.json() as Record<string, unknown>
  assert.equal(res.status, 201, JSON.stringify(json))
  return json
}

async function predict (app: Penumbra, instances: number[][] = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.1, 4.7, 1.5], [7.7, 3.0, 6.1, 2.3]], headers: Record<string, string> = {}): Promise<{ status: number, headers: Headers, text: string }> {
  const res = await fetch(`${urls(app).proxy}/v1/models/demo:predict`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ instances }) })
  return { status: res.status, headers: res.headers, text: await res.text() }
}

async function injected (app: Penumbra, experiment: string, kind: string): Promise<number> {
  const text = await app.metrics.registry.metrics()
  const m = new RegExp(`^penumbra_faults_injected_total\\{experiment="${experiment}",target="[^"]*",kind="${kind}"\\} (\\d+)`, 'm').exec(text)
  return m === null ? 0 : Number(m[1])
}

test('transport faults on the primary: delay, abort with a status, reset, timeout, slow body', async (t) => {
  const up = await startUpstream((_req, res) => {
    const text = JSON.stringify({ predictions: [{ label: 'setosa', scores: [0.9, 0.05, 0.05] }], pad: 'x'.repeat(1500) })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  })
  const app = await chaosApp({ primary: { url: up.url, timeoutMs: 1500 } }, { maxClientShare: 1 })
  t.after(async () => { await app.stop(); await up.close() })

  // delay: the answer is the upstream's, later, and says it was faulted.
  await startExperiment(app, { name: 'lag', target: 'primary', faults: [{ kind: 'delay', ms: 250 }] })
  const t0 = Date.now()
  const slow = await predict(app)
  assert.equal(slow.status, 200)
  assert.ok(Date.now() - t0 >= 240, 'the delay held the answer back')
  assert.equal(slow.headers.get('x-penumbra-fault'), 'lag')
  assert.equal(JSON.parse(slow.text).predictions[0].label, 'setosa')
  assert.equal(await injected(app, 'lag', 'delay'), 1)
  await fetch(`${urls(app).admin}/chaos/experiments/lag`, { method: 'DELETE', headers: AUTH })

  // A delay past primary.timeoutMs ends as the request's own 504.
  await startExperiment(app, { name: 'lag2', target: 'primary', faults: [{ kind: 'delay', ms: 5000 }] })
  const late = await predict(app)
  assert.equal(late.status, 504)
  assert.equal(JSON.parse(late.text).error, 'PENUMBRA_UPSTREAM_TIMEOUT')
  assert.equal(late.headers.get('x-penumbra-fault'), 'lag2')
  await fetch(`${urls(app).admin}/chaos`, { method: 'DELETE', headers: AUTH })

  // abort with a status: the upstream is never asked.
  const before = up.seen.length
  await startExperiment(app, { name: 'boom', target: 'primary', faults: [{ kind: 'abort', status: 503, body: { error: 'overloaded' } }] })
  const aborted = await predict(app)
  assert.equal(aborted.status, 503)
  assert.deepEqual(JSON.parse(aborted.text), { error: 'overloaded' })
  assert.equal(aborted.headers.get('x-penumbra-fault'), 'boom')
  assert.equal(up.seen.length, before, 'the upstream never saw the aborted request')
  await fetch(`${urls(app).admin}/chaos`, { method: 'DELETE', headers: AUTH })

  // abort as a connection reset: penumbra's 502.
  await startExperiment(app, { name: 'rst', target: 'primary', faults: [{ kind: 'abort', reset: true }] })
  const reset = await predict(app)
  assert.equal(reset.status, 502)
  assert.equal(JSON.parse(reset.text).error, 'PENUMBRA_UPSTREAM_UNAVAILABLE')
  assert.equal(reset.headers.get('x-penumbra-fault'), 'rst')
  await fetch(`${urls(app).admin}/chaos`, { method: 'DELETE', headers: AUTH })

  // timeout: never answers; primary.timeoutMs (1500 ms) applies.
  await startExperiment(app, { name: 'hang', target: 'primary', faults: [{ kind: 'timeout' }] })
  const hung = await predict(app)
  assert.equal(hung.status, 504)
  assert.equal(hung.headers.get('x-penumbra-fault'), 'hang')
  assert.equal(await injected(app, 'hang', 'timeout'), 1)
  await fetch(`${urls(app).admin}/chaos`, { method: 'DELETE', headers: AUTH })

  // slow_body: every byte arrives, paced.
  const plain = await predict(app)
  await startExperiment(app, { name: 'drip', target: 'primary', faults: [{ kind: 'slow_body', bytesPerSecond: 4000 }] })
  const t1 = Date.now()
  const dripped = await predict(app)
  assert.equal(dripped.status, 200)
  assert.equal(dripped.text, plain.text, 'the same bytes')
  assert.ok(Date.now() - t1 >= 300, `${plain.text.length} bytes at 4000 B/s take a while`)
  assert.equal(await injected(app, 'drip', 'slow_body'), 1)
  await fetch(`${urls(app).admin}/chaos`, { method: 'DELETE', headers: AUTH })

  // Nothing running: answers are untouched and unmarked, and an upstream cannot mark them.
  const clean = await predict(app)
  assert.equal(clean.status, 200)
  assert.equal(clean.headers.get('x-penumbra-fault'), null)
  up.handler = (_req, res) => { res.writeHead(200, { 'content-type': 'application/json', 'x-penumbra-fault': 'forged' }); res.end('{}') }
  const forged = await predict(app)
  assert.equal(forged.headers.get('x-penumbra-fault'), null, 'only penumbra marks a faulted response')
})

test('model faults keep the answer valid for its format (KServe v1 demo model)', async (t) => {
  const model = await startDemoModel(0, { role: 'primary' })
  const app = await chaosApp({ primary: { url: `http://127.0.0.1:${portOf(model)}` } }, { maxClientShare: 1 })
  t.after(async () => { await app.stop(); await new Promise<void>((resolve) => { model.close(() => resolve()); model.closeAllConnections() }) })
  const valid = (text: string, headers: Headers): Array<{ label: string, scores: number[], latency_ms?: number }> => {
    assert.equal(Number(headers.get('content-length')), Buffer.byteLength(text), 'content-length fits the rewritten body')
    const doc = JSON.parse(text) as { predictions: Array<{ label: string, scores: number[] }> }
    for (const p of doc.predictions) {
      assert.ok(LABELS.includes(p.label), `a label of the model: ${p.label}`)
      assert.equal(p.scores.length, 3)
      assert.ok(Math.abs(p.scores.reduce((a, b) => a + b, 0) - 1) < 1e-3, 'scores stay a distribution')
      assert.equal(LABELS[p.scores.indexOf(Math.max(...p.scores))], p.label, 'the label is the top score')
    }
    return doc.predictions
  }
  const plain = await predict(app)
  const truth = valid(plain.text, plain.headers)

  await startExperiment(app, { name: 'flip', target: 'primary', faults: [{ kind: 'flip_label', p: 1 }] })
  await predict(app) // the classes are learned from the answers
  const flipped = await predict(app)
  assert.equal(flipped.headers.get('x-penumbra-fault'), 'flip')
  const fp = valid(flipped.text, flipped.headers)
  fp.forEach((p, i) => assert.notEqual(p.label, truth[i]!.label, 'every label flipped (p = 1)'))
  await fetch(`${urls(app).admin}/chaos`, { method: 'DELETE', headers: AUTH })

  await startExperiment(app, { name: 'noisy', target: 'primary', faults: [{ kind: 'score_noise', sigma: 0.05 }] })
  const noisy = await predict(app)
  const np = valid(noisy.text, noisy.headers)
  assert.ok(np.some((p, i) => p.scores.some((s, k) => s !== truth[i]!.scores[k])), 'scores moved')
  await fetch(`${urls(app).admin}/chaos`, { method: 'DELETE', headers: AUTH })

  await startExperiment(app, { name: 'tilt', target: 'primary', faults: [{ kind: 'bias', toward: 0, strength: 1 }] })
  await predict(app)
  const tilted = await predict(app)
  for (const p of valid(tilted.text, tilted.headers)) assert.equal(p.label, 'setosa', 'all mass moved to class 0')
  await fetch(`${urls(app).admin}/chaos`, { method: 'DELETE', headers: AUTH })

  await startExperiment(app, { name: 'drop', target: 'primary', faults: [{ kind: 'drop_field', pointer: '/predictions/*/latency_ms' }] })
  const dropped = await predict(app)
  for (const p of valid(dropped.text, dropped.headers)) assert.equal(p.latency_ms, undefined)
  assert.equal(await injected(app, 'drop', 'drop_field'), 1)
  await fetch(`${urls(app).admin}/chaos`, { method: 'DELETE', headers: AUTH })

  // stale: the second request gets the answer recorded for the first.
  await startExperiment(app, { name: 'old', target: 'primary', faults: [{ kind: 'stale' }] })
  const first = await predict(app, [[5.1, 3.5, 1.4, 0.2]])
  const second = await predict(app, [[7.7, 3.0, 6.1, 2.3]])
  assert.equal(JSON.parse(second.text).predictions[0].label, JSON.parse(first.text).predictions[0].label)
  assert.equal(JSON.parse(second.text).predictions[0].label, 'setosa', 'the earlier answer, not its own (virginica)')
  assert.equal(await injected(app, 'old', 'stale'), 1)
})

test('truncate_text cuts an LLM answer to n tokens and says so', async (t) => {
  const llm = await startFakeOpenAI({ answer: { content: 'one two three four five six seven eight' } })
  const app = await chaosApp({ primary: { url: llm.url } }, { maxClientShare: 1 })
  t.after(async () => { await app.stop(); await llm.close() })
  await startExperiment(app, { name: 'short', target: 'primary', faults: [{ kind: 'truncate_text', tokens: 3 }] })
  const res = await fetch(`${urls(app).proxy}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }) })
  const doc = await res.json() as { choices: Array<{ message: { content: string }, finish_reason: string }> }
  assert.equal(res.headers.get('x-penumbra-fault'), 'short')
  assert.equal(doc.choices[0]!.message.content, 'one two three')
  assert.equal(doc.choices[0]!.finish_reason, 'length')
})

test('truncate_text on a streamed chat answer: the stream is cut at n tokens, says finish_reason length, ends with [DONE]', async (t) => {
  const llm = await startFakeOpenAI({ answer: { content: 'one two three four five six seven eight', pieceChars: 3 } })
  const app = await chaosApp({ primary: { url: llm.url } }, { maxClientShare: 1 })
  t.after(async () => { await app.stop(); await llm.close() })
  await startExperiment(app, { name: 'short', target: 'primary', faults: [{ kind: 'truncate_text', tokens: 3 }] })
  const res = await fetch(`${urls(app).proxy}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] }) })
  assert.equal(res.headers.get('x-penumbra-fault'), 'short')
  const text = await res.text()
  const events = text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6))
  assert.equal(events[events.length - 1], '[DONE]')
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as { choices: Array<{ delta: { content?: string }, finish_reason: string | null }> })
  assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'one two three')
  assert.equal(chunks[chunks.length - 1]!.choices[0]!.finish_reason, 'length')
  assert.equal(await injected(app, 'short', 'truncate_text'), 1)
})

test('a shadow-only fault never changes the client\'s response, and the shadow sees it', async (t) => {
  const primary = await startDemoModel(0, { role: 'primary' })
  const shadow = await startDemoModel(0, { role: 'shadow', disagreeRate: 0 })
  const app = await chaosApp({
    primary: { url: `http://127.0.0.1:${portOf(primary)}` },
    shadows: [{ name: 'v2', url: `http://127.0.0.1:${portOf(shadow)}`, sampleRate: 1 }],
    compare: { ignore: ['/model_version', '/predictions/*/latency_ms'] }
  })
  t.after(async () => {
    await app.stop()
    for (const s of [primary, shadow]) await new Promise<void>((resolve) => { s.close(() => resolve()); s.closeAllConnections() })
  })
  const baseline = await predict(app)
  await startExperiment(app, { name: 'shadowflip', target: 'shadow:v2', faults: [{ kind: 'flip_label', p: 1 }, { kind: 'delay', ms: 50 }] })
  const n = 20
  for (let i = 0; i < n; i++) {
    const r = await predict(app)
    assert.equal(r.status, 200)
    assert.equal(r.headers.get('x-penumbra-fault'), null, 'the client is never told: nothing of its answer changed')
    const a = JSON.parse(r.text).predictions.map((p: { label: string }) => p.label)
    assert.deepEqual(a, JSON.parse(baseline.text).predictions.map((p: { label: string }) => p.label))
  }
  // The shadow's answers were faulted: the comparisons disagree.
  await waitFor(async () => {
    const r = await (await fetch(`${urls(app).admin}/report`, { headers: AUTH })).json() as { shadows: Array<{ comparisons: { mismatch: number, total: number } }> }
    return r.shadows[0]!.comparisons.total >= n + 1 && r.shadows[0]!.comparisons.mismatch >= n - 1
  }, 10_000, 'the shadow comparisons to disagree')
  const list = await (await fetch(`${urls(app).admin}/chaos/experiments`, { headers: AUTH })).json() as { experiments: Array<{ injected: Record<string, number> }>, lastMinute: { faulted: number } }
  assert.ok(list.experiments[0]!.injected.flip_label! >= n - 1)
  assert.equal(list.lastMinute.faulted, 0, 'shadow faults do not count against the client blast radius')
})

test('shadow faults through a named backend\'s dispatcher: abort reaches only the shadow', async (t) => {
  const prim = await startUpstream()
  const cand = await startUpstream()
  const app = await chaosApp({
    backends: { blue: { url: prim.url }, green: { url: cand.url } },
    primary: 'blue',
    shadows: [{ name: 'green', backend: 'green', sampleRate: 1 }]
  })
  t.after(async () => { await app.stop(); await prim.close(); await cand.close() })
  await startExperiment(app, { name: 'greenfail', target: 'shadow:green', faults: [{ kind: 'abort', status: 500 }] })
  for (let i = 0; i < 5; i++) {
    const r = await predict(app)
    assert.equal(r.status, 200)
    assert.equal(r.headers.get('x-penumbra-fault'), null)
  }
  await waitFor(async () => {
    const r = await (await fetch(`${urls(app).admin}/chaos/experiments`, { headers: AUTH })).json() as { experiments: Array<{ injected: Record<string, number> }> }
    return r.experiments[0]!.injected.abort === 5
  }, 5000, 'five shadow aborts')
  assert.equal(cand.seen.length, 0, 'the shadow backend was never asked')
  assert.equal(prim.seen.length, 5)
})

test('blast radius: client-facing faults stop at chaos.maxClientShare of the last minute', async (t) => {
  const up: Upstream = await startUpstream()
  const app = await chaosApp({ primary: { url: up.url } }, { maxClientShare: 0.1 })
  t.after(async () => { await app.stop(); await up.close() })
  await startExperiment(app, { name: 'wide', target: 'primary', faults: [{ kind: 'abort', status: 500 }] })
  let faulted = 0
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`${urls(app).proxy}/x`, { method: 'POST', body: '{}' })
    await r.arrayBuffer()
    if (r.headers.get('x-penumbra-fault') === 'wide') { faulted++; assert.equal(r.status, 500) } else assert.equal(r.status, 200)
  }
  assert.equal(faulted, 10, '10% of 100 requests')
  const list = await (await fetch(`${urls(app).admin}/chaos/experiments`, { headers: AUTH })).json() as { experiments: Array<{ capped: number }>, lastMinute: { requests: number, faulted: number } }
  assert.equal(list.experiments[0]!.capped, 90)
  assert.deepEqual(list.lastMinute, { requests: 100, faulted: 10 })
})

test('scope: methods, paths, header values, units and probability', async (t) => {
  const up = await startUpstream()
  const app = await chaosApp({ primary: { url: up.url } }, { maxClientShare: 1 })
  t.after(async () => { await app.stop(); await up.close() })
  await startExperiment(app, {
    name: 'narrow',
    target: 'primary',
    faults: [{ kind: 'abort', status: 418 }],
    scope: { methods: ['POST'], paths: ['/v1/**'], header: { name: 'x-tenant', in: ['acme'] }, units: { from: 'query:user', in: ['u1', 'u2'] } }
  })
  const call = async (method: string, path: string, tenant?: string): Promise<number> => {
    const r = await fetch(`${urls(app).proxy}${path}`, { method, headers: tenant === undefined ? {} : { 'x-tenant': tenant }, body: method === 'GET' ? undefined : '{}' })
    await r.arrayBuffer()
    return r.status
  }
  assert.equal(await call('POST', '/v1/a?user=u1', 'acme'), 418)
  assert.equal(await call('GET', '/v1/a?user=u1', 'acme'), 200, 'method not in scope')
  assert.equal(await call('POST', '/v2/a?user=u1', 'acme'), 200, 'path not in scope')
  assert.equal(await call('POST', '/v1/a?user=u1', 'other'), 200, 'header value not in scope')
  assert.equal(await call('POST', '/v1/a?user=u1'), 200, 'no header')
  assert.equal(await call('POST', '/v1/a?user=u9', 'acme'), 200, 'unit not in the list')
  await fetch(`${urls(app).admin}/chaos`, { method: 'DELETE', headers: AUTH })

  await startExperiment(app, { name: 'half', target: 'primary', faults: [{ kind: 'abort', status: 500 }], scope: { probability: 0.5 } })
  let hits = 0
  for (let i = 0; i < 200; i++) if (await call('POST', '/p') === 500) hits++
  // Binomial(200, 0.5): outside [60, 140] has probability < 1e-8.
  assert.ok(hits > 60 && hits < 140, `about half: ${hits}`)
})

test('expiry and shutdown end every fault; penumbra_chaos_active follows', async (t) => {
  const up = await startUpstream()
  const app = await chaosApp({ primary: { url: up.url } }, { maxClientShare: 1 })
  t.after(async () => { await app.stop(); await up.close() })
  const started = await startExperiment(app, { name: 'brief', target: 'primary', faults: [{ kind: 'abort', status: 500 }], durationMs: 300 })
  assert.ok(typeof started.expiresAt === 'string')
  assert.match(await app.metrics.registry.metrics(), /penumbra_chaos_active\{experiment="brief"\} 1/)
  await waitFor(() => app.chaos!.active.length === 0, 5000, 'the experiment to expire')
  assert.match(await app.metrics.registry.metrics(), /penumbra_chaos_active\{experiment="brief"\} 0/)
  const r = await fetch(`${urls(app).proxy}/x`, { method: 'POST', body: '{}' })
  await r.arrayBuffer()
  assert.equal(r.status, 200, 'expired: no fault')

  await startExperiment(app, { name: 'long', target: 'primary', faults: [{ kind: 'abort', status: 500 }], durationMs: 3_600_000 })
  assert.equal(app.chaos!.active.length, 1)
  await app.stop()
  assert.equal(app.chaos!.active.length, 0, 'shutdown stops every experiment')
  assert.match(await app.metrics.registry.metrics(), /penumbra_chaos_active\{experiment="long"\} 0/)
})

test('transport faults on a shadow: the client is untouched, the shadow times out, errors, or gets its bytes slowly', async (t) => {
  const primary = await startDemoModel(0, { role: 'primary' })
  const shadow = await startDemoModel(0, { role: 'shadow', disagreeRate: 0 })
  const app = await chaosApp({
    primary: { url: `http://127.0.0.1:${portOf(primary)}` },
    shadows: [{ name: 'v2', url: `http://127.0.0.1:${portOf(shadow)}`, sampleRate: 1, timeoutMs: 400 }],
    compare: { ignore: ['/model_version', '/predictions/*/latency_ms'] }
  })
  t.after(async () => {
    await app.stop()
    for (const s of [primary, shadow]) await new Promise<void>((resolve) => { s.close(() => resolve()); s.closeAllConnections() })
  })
  const counters = async (): Promise<{ ok: number, error: number, timeout: number }> =>
    ((await (await fetch(`${urls(app).admin}/shadows/v2`, { headers: AUTH })).json()) as { counters: { ok: number, error: number, timeout: number } }).counters
  const baseline = JSON.parse((await predict(app)).text).predictions.map((p: { label: string }) => p.label)
  const clientUntouched = async (): Promise<void> => {
    const r = await predict(app)
    assert.equal(r.status, 200)
    assert.equal(r.headers.get('x-penumbra-fault'), null)
    assert.deepEqual(JSON.parse(r.text).predictions.map((p: { label: string }) => p.label), baseline)
  }
  for (const [fault, outcome] of [[{ kind: 'timeout' }, 'timeout'], [{ kind: 'abort', reset: true }, 'error'], [{ kind: 'slow_body', bytesPerSecond: 2000 }, 'ok']] as const) {
    const before = await counters()
    await startExperiment(app, { name: 'shadowfault', target: 'shadow:v2', faults: [fault] })
    await clientUntouched()
    await waitFor(async () => (await counters())[outcome] === before[outcome] + 1, 5000, `the shadow call to end as ${outcome}`)
    assert.equal(await injected(app, 'shadowfault', fault.kind), 1)
    await fetch(`${urls(app).admin}/chaos`, { method: 'DELETE', headers: AUTH })
  }
})

test('timeout with a streamed (chunked) upload: undici\'s headersTimeout is honoured, the upload is read', async (t) => {
  const up = await startUpstream()
  const app = await chaosApp({ primary: { url: up.url, timeoutMs: 500 } }, { maxClientShare: 1 })
  t.after(async () => { await app.stop(); await up.close() })
  await startExperiment(app, { name: 'hang', target: 'primary', faults: [{ kind: 'timeout' }] })
  const chunks = [Buffer.alloc(100_000, 1), Buffer.alloc(100_000, 2)]
  const body = new ReadableStream({ pull (c) { const next = chunks.shift(); if (next === undefined) c.close(); else c.enqueue(next) } })
  const res = await fetch(`${urls(app).proxy}/upload`, { method: 'POST', body, duplex: 'half' } as RequestInit)
  assert.equal(res.status, 504)
  assert.equal(res.headers.get('x-penumbra-fault'), 'hang')
  assert.equal(up.seen.length, 0)
})

test('scope.variant: only the requests an A/B experiment assigned to that arm are faulted', async (t) => {
  const up = await startUpstream()
  const app = await chaosApp({
    backends: { blue: { url: up.url } },
    primary: 'blue',
    experiments: [{ name: 'ab', unit: 'header:x-user', variants: [{ name: 'control', backend: 'blue' }, { name: 'treat', backend: 'blue' }] }]
  }, { maxClientShare: 1 })
  t.after(async () => { await app.stop(); await up.close() })
  await startExperiment(app, { name: 'treatonly', target: 'blue', faults: [{ kind: 'abort', status: 500 }], scope: { variant: 'ab=treat' } })
  const arms = new Map<string, number[]>()
  for (let i = 0; i < 40; i++) {
    const r = await fetch(`${urls(app).proxy}/p`, { method: 'POST', headers: { 'x-user': `u${i}` }, body: '{}' })
    await r.arrayBuffer()
    const arm = r.headers.get('x-penumbra-experiment')!
    arms.set(arm, [...(arms.get(arm) ?? []), r.status])
  }
  assert.ok((arms.get('ab=treat') ?? []).length > 0 && (arms.get('ab=control') ?? []).length > 0, 'both arms drawn')
  assert.ok(arms.get('ab=treat')!.every((s) => s === 500))
  assert.ok(arms.get('ab=control')!.every((s) => s === 200))
})

test('model faults on a chunked JSON answer: re-framed with content-length; a non-JSON answer passes unchanged', async (t) => {
  const up = await startUpstream((req, res) => {
    if (req.url === '/text') { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('label: a'); return }
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' })
    res.write('{"predictions": [{"label": "a", "scores": [0.7, 0.3], ')
    res.end('"latency_ms": 4}]}')
  })
  const app = await chaosApp({ primary: { url: up.url } }, { maxClientShare: 1 })
  t.after(async () => { await app.stop(); await up.close() })
  await startExperiment(app, { name: 'drop', target: 'primary', faults: [{ kind: 'drop_field', pointer: '/predictions/0/latency_ms' }] })
  const r = await fetch(`${urls(app).proxy}/p`, { method: 'POST', body: '{}' })
  const text = await r.text()
  assert.deepEqual(JSON.parse(text), { predictions: [{ label: 'a', scores: [0.7, 0.3] }] })
  assert.equal(r.headers.get('content-length'), String(Buffer.byteLength(text)))
  assert.equal(r.headers.get('transfer-encoding'), null)
  const plain = await fetch(`${urls(app).proxy}/text`, { method: 'POST', body: '{}' })
  assert.equal(await plain.text(), 'label: a')
})
