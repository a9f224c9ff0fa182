import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'
import { request } from 'undici'
import { startUpstream, startPenumbra, urls, waitFor } from './helpers/servers.js'
import { closedPortUrl, httpServer } from './helpers/proxy-util.js'

// Issue #2: the admin listener (/metrics, /healthz, /readyz, /config, 404s, bind address).

async function get (url: string): Promise<{ status: number, headers: Record<string, unknown>, text: string }> {
  const r = await request(url)
  return { status: r.statusCode, headers: r.headers, text: await r.body.text() }
}

/** The value of one sample line `name{labels} value` (labels in any order), or undefined. */
function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const have: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have[l[1]!] = l[2]!
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3])
  }
  return undefined
}

test('GET /metrics: request, duration, upstream, inflight and default process/nodejs metrics', { timeout: 10_000 }, async (t) => {
  const up = await startUpstream()
  t.after(() => up.close())
  const app = await startPenumbra({ primary: { url: up.url } })
  t.after(() => app.stop())
  const { proxy, admin } = urls(app)
  for (let i = 0; i < 3; i++) { const r = await request(`${proxy}/p`, { method: 'POST', body: '{}' }); await r.body.arrayBuffer() }
  const g = await request(`${proxy}/g`); await g.body.arrayBuffer()
  const m = await get(`${admin}/metrics`)
  assert.equal(m.status, 200)
  assert.match(String(m.headers['content-type']), /^text\/plain/)
  const text = m.text
  assert.equal(sample(text, 'penumbra_requests_total', { method: 'POST', code: '200' }), 3)
  assert.equal(sample(text, 'penumbra_requests_total', { method: 'GET', code: '200' }), 1)
  assert.equal(sample(text, 'penumbra_request_duration_seconds_count'), 4)
  assert.equal(sample(text, 'penumbra_request_duration_seconds_bucket', { le: '+Inf' }), 4)
  assert.ok(sample(text, 'penumbra_request_duration_seconds_sum')! > 0)
  assert.equal(sample(text, 'penumbra_upstream_duration_seconds_count', { upstream: 'primary' }), 4)
  assert.equal(sample(text, 'penumbra_upstream_duration_seconds_bucket', { upstream: 'primary', le: '+Inf' }), 4)
  assert.equal(sample(text, 'penumbra_inflight_requests'), 0)
  assert.match(text, /^# TYPE penumbra_requests_total counter$/m)
  assert.match(text, /^# TYPE penumbra_request_duration_seconds histogram$/m)
  assert.match(text, /^# TYPE penumbra_inflight_requests gauge$/m)
  assert.ok(sample(text, 'process_cpu_user_seconds_total') !== undefined, 'process_ default metrics')
  assert.ok(sample(text, 'process_resident_memory_bytes')! > 0)
  assert.ok(/^nodejs_heap_size_used_bytes \d/m.test(text), 'nodejs_ default metrics')
  assert.ok(/^nodejs_eventloop_lag_seconds /m.test(text))
  // Request paths never become label values.
  assert.ok(!/path="\/p"/.test(text))
})

test('GET /metrics: penumbra_inflight_requests counts a request in flight', { timeout: 10_000 }, async (t) => {
  let release: (() => void) | null = null
  const up = await httpServer((req, res) => { req.resume(); release = () => res.end('done') })
  t.after(() => up.stop())
  const app = await startPenumbra({ primary: { url: up.url } })
  t.after(() => app.stop())
  const { proxy, admin } = urls(app)
  const pending = request(`${proxy}/slow`)
  await waitFor(() => release !== null, 5000, 'upstream request')
  assert.equal(sample((await get(`${admin}/metrics`)).text, 'penumbra_inflight_requests'), 1)
  release!()
  const r = await pending
  assert.equal(await r.body.text(), 'done')
  await waitFor(async () => sample((await get(`${admin}/metrics`)).text, 'penumbra_inflight_requests') === 0, 5000, 'inflight back to 0')
})

test('GET /metrics: penumbra_upstream_errors_total{upstream,reason} after a 502 and a 504', { timeout: 10_000 }, async (t) => {
  const app = await startPenumbra({ primary: { url: await closedPortUrl() } })
  t.after(() => app.stop())
  const { proxy, admin } = urls(app)
  for (let i = 0; i < 2; i++) { const r = await request(`${proxy}/x`); await r.body.arrayBuffer(); assert.equal(r.statusCode, 502) }
  const text = (await get(`${admin}/metrics`)).text
  assert.equal(sample(text, 'penumbra_upstream_errors_total', { upstream: 'primary', reason: 'refused' }), 2)
  assert.equal(sample(text, 'penumbra_requests_total', { method: 'GET', code: '502' }), 2)

  const slow = await httpServer((_req, res) => { const h = setTimeout(() => res.end(), 5000); res.on('close', () => clearTimeout(h)) })
  t.after(() => slow.stop())
  const app2 = await startPenumbra({ primary: { url: slow.url, timeoutMs: 100 } })
  t.after(() => app2.stop())
  const r = await request(`${urls(app2).proxy}/t`); await r.body.arrayBuffer()
  assert.equal(r.statusCode, 504)
  const text2 = (await get(`${urls(app2).admin}/metrics`)).text
  assert.equal(sample(text2, 'penumbra_upstream_errors_total', { upstream: 'primary', reason: 'timeout' }), 1)
  assert.equal(sample(text2, 'penumbra_requests_total', { method: 'GET', code: '504' }), 1)
})

test('GET /healthz → 200; GET /readyz → 200 when the primary is reachable, 503 with a reason when not', { timeout: 10_000 }, async (t) => {
  const up = await startUpstream()
  t.after(() => up.close())
  const app = await startPenumbra({ primary: { url: up.url } })
  t.after(() => app.stop())
  const { admin } = urls(app)
  const h = await get(`${admin}/healthz`)
  assert.equal(h.status, 200)
  assert.match(String(h.headers['content-type']), /^application\/json/)
  const r = await get(`${admin}/readyz`)
  assert.equal(r.status, 200)
  assert.equal((JSON.parse(r.text) as { ready: boolean }).ready, true)

  const down = await startPenumbra({ primary: { url: await closedPortUrl() } })
  t.after(() => down.stop())
  const d = await get(`${urls(down).admin}/readyz`)
  assert.equal(d.status, 503)
  const body = JSON.parse(d.text) as { ready: boolean, reason: string }
  assert.equal(body.ready, false)
  assert.equal(typeof body.reason, 'string')
  assert.match(body.reason, /primary/)
  assert.match(body.reason, /ECONNREFUSED/)
  // Liveness does not depend on the primary.
  assert.equal((await get(`${urls(down).admin}/healthz`)).status, 200)
})

test('/readyz follows the primary going away and coming back (within the probe cache)', { timeout: 10_000 }, async (t) => {
  const up = await startUpstream()
  const port = up.port
  const app = await startPenumbra({ primary: { url: up.url } })
  t.after(() => app.stop())
  const { admin } = urls(app)
  assert.equal((await get(`${admin}/readyz`)).status, 200)
  await up.close()
  await waitFor(async () => (await get(`${admin}/readyz`)).status === 503, 5000, 'readyz 503 after the primary stopped')
  const again = await startUpstream()
  // Re-listen on the same port when possible; otherwise the rest of this test does not apply.
  await new Promise<void>((resolve) => again.server.close(() => resolve()))
  const ok = await new Promise<boolean>((resolve) => {
    again.server.once('error', () => resolve(false))
    again.server.listen(port, '127.0.0.1', () => resolve(true))
  })
  t.after(() => again.close())
  if (!ok) return
  await waitFor(async () => (await get(`${admin}/readyz`)).status === 200, 5000, 'readyz 200 after the primary came back')
})

test('GET /config: effective config with admin.token redacted', { timeout: 10_000 }, async (t) => {
  const up = await startUpstream()
  t.after(() => up.close())
  const secret = 'sup3r-s3cret-admin-token'
  const app = await startPenumbra({ primary: { url: up.url, timeoutMs: 1234 }, admin: { host: '127.0.0.1', port: 0, token: secret } })
  t.after(() => app.stop())
  assert.equal((await get(`${urls(app).admin}/config`)).status, 401, 'protectReads is on by default with a token')
  const r = await request(`${urls(app).admin}/config`, { headers: { authorization: `Bearer ${secret}` } })
  const c = { status: r.statusCode, text: await r.body.text() }
  assert.equal(c.status, 200)
  assert.ok(!c.text.includes(secret), 'token must not appear')
  // The legacy `primary: {url}` form shows as the backend named "primary" (the effective config).
  const cfg = JSON.parse(c.text) as { admin: { token: string }, primary: string, backends: Record<string, { url: string, timeoutMs: number }>, listen: { host: string } }
  assert.equal(cfg.admin.token, '[REDACTED]')
  assert.equal(cfg.primary, 'primary')
  assert.equal(cfg.backends.primary!.url, up.url)
  assert.equal(cfg.backends.primary!.timeoutMs, 1234)
  assert.equal(cfg.listen.host, '127.0.0.1')
  // Without a token, the field is null, not redacted.
  const app2 = await startPenumbra({ primary: { url: up.url } })
  t.after(() => app2.stop())
  assert.equal((JSON.parse((await get(`${urls(app2).admin}/config`)).text) as { admin: { token: unknown } }).admin.token, null)
})

test('admin binds 127.0.0.1 by default', { timeout: 10_000 }, async (t) => {
  const up = await startUpstream()
  t.after(() => up.close())
  const app = await startPenumbra({ primary: { url: up.url }, admin: { port: 0 } })
  t.after(() => app.stop())
  const addr = app.admin!.server.address() as { address: string }
  assert.equal(addr.address, '127.0.0.1')
  assert.equal(app.config.admin.host, '127.0.0.1')
})

test('admin.enabled: false → no admin listener', { timeout: 10_000 }, async (t) => {
  const up = await startUpstream()
  t.after(() => up.close())
  const app = await startPenumbra({ primary: { url: up.url }, admin: { enabled: false, port: 0 } })
  t.after(() => app.stop())
  assert.equal(app.admin, null)
  const r = await request(`${urls(app).proxy}/x`); await r.body.arrayBuffer()
  assert.equal(r.statusCode, 200)
})

test('unknown admin path (and method) → 404 JSON', { timeout: 10_000 }, async (t) => {
  const up = await startUpstream()
  t.after(() => up.close())
  const app = await startPenumbra({ primary: { url: up.url } })
  t.after(() => app.stop())
  const { admin } = urls(app)
  for (const [method, path] of [['GET', '/nope'], ['GET', '/metrics/extra'], ['POST', '/metrics'], ['DELETE', '/config']] as const) {
    const r = await request(`${admin}${path}`, { method })
    assert.equal(r.statusCode, 404, `${method} ${path}`)
    assert.match(String(r.headers['content-type']), /^application\/json/)
    const body = await r.body.json() as { error: string, message: string }
    assert.equal(body.error, 'PENUMBRA_NOT_FOUND')
    assert.equal(typeof body.message, 'string')
  }
  // The admin port does not proxy, and the proxy port does not serve admin routes.
  assert.equal(up.seen.length, 0)
  const viaProxy = await request(`${urls(app).proxy}/metrics`); await viaProxy.body.arrayBuffer()
  assert.equal(up.seen.length, 1)
  assert.equal(up.seen[0]!.url, '/metrics')
})

test('a client abort after the response head went out counts as code 499, not 200', { timeout: 10_000 }, async (t) => {
  let release: (() => void) | null = null
  const up = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('first part ')
    release = () => res.end('rest')
  })
  const app = await startPenumbra({ primary: { url: up.url } })
  t.after(async () => { release?.(); await app.stop(); await up.close() })
  const { proxy, admin } = urls(app)
  await new Promise<void>((resolve, reject) => {
    const req = httpRequest(`${proxy}/stream`, (res) => {
      assert.equal(res.statusCode, 200)
      res.once('data', () => { req.destroy(); resolve() })
    })
    req.on('error', (err) => { if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err) })
    req.end()
  })
  await waitFor(async () => sample((await get(`${admin}/metrics`)).text, 'penumbra_requests_total', { method: 'GET', code: '499' }) === 1, 5000, 'the 499')
  const text = (await get(`${admin}/metrics`)).text
  assert.equal(sample(text, 'penumbra_requests_total', { method: 'GET', code: '200' }), undefined)
  assert.equal(sample(text, 'penumbra_backend_requests_total', { backend: 'primary', code: '499' }), 1)
})

test('error, drop, reload and noise counters have their series at 0 before the first event', { timeout: 10_000 }, async (t) => {
  const up = await startUpstream()
  const app = await startPenumbra({ primary: { url: up.url }, shadows: [{ name: 'v2', url: up.url }] })
  t.after(async () => { await app.stop(); await up.close() })
  const text = (await get(`${urls(app).admin}/metrics`)).text
  for (const upstream of ['primary', 'v2']) {
    for (const reason of ['refused', 'reset', 'timeout', 'dns', 'bad_response', 'aborted', 'bad_request', 'other']) {
      assert.equal(sample(text, 'penumbra_upstream_errors_total', { upstream, reason }), 0, `${upstream} ${reason}`)
    }
  }
  for (const reason of ['queue_full', 'primary_error', 'disabled', 'worker_failed']) assert.equal(sample(text, 'penumbra_comparisons_dropped_total', { shadow: 'v2', reason }), 0, reason)
  for (const result of ['ok', 'invalid']) assert.equal(sample(text, 'penumbra_config_reloads_total', { result }), 0, result)
  for (const outcome of ['ok', 'error', 'timeout', 'skipped']) assert.equal(sample(text, 'penumbra_noise_requests_total', { outcome }), 0, outcome)
  assert.equal(sample(text, 'penumbra_shadow_skipped_total', { shadow: 'v2', reason: 'rewrite_failed' }), 0)
  assert.equal(sample(text, 'penumbra_comparisons_total', { shadow: 'v2', outcome: 'unsupported' }), 0)
})

test('penumbra_noise_requests_total{outcome="skipped"}: a replay drawn but not sent (its body limit) is counted', { timeout: 10_000 }, async (t) => {
  const up = await startUpstream()
  // The replay takes the first shadow's limits: 100 bytes here.
  const app = await startPenumbra({
    primary: { url: up.url },
    shadows: [{ name: 'small', url: up.url, maxBodyBytes: 100 }, { name: 'big', url: up.url, maxBodyBytes: 10_000 }],
    compare: { noise: { enabled: true, sampleRate: 1 } }
  })
  t.after(async () => { await app.stop(); await up.close() })
  const r = await request(`${urls(app).proxy}/v1/models/m:predict`, { method: 'POST', body: JSON.stringify({ instances: ['x'.repeat(1000)] }) })
  assert.equal(r.statusCode, 200)
  await r.body.text()
  await waitFor(async () => sample((await get(`${urls(app).admin}/metrics`)).text, 'penumbra_shadow_requests_total', { shadow: 'big', outcome: 'ok' }) === 1, 5000, 'the big shadow')
  const text = (await get(`${urls(app).admin}/metrics`)).text
  assert.equal(sample(text, 'penumbra_noise_requests_total', { outcome: 'skipped' }), 1)
  assert.equal(sample(text, 'penumbra_noise_requests_total', { outcome: 'ok' }), 0)
  assert.equal(sample(text, 'penumbra_shadow_skipped_total', { shadow: 'small', reason: 'body_too_large' }), 1)
})
