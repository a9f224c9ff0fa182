import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { testConfig, waitFor } from './helpers/servers.js'
import { call, metricValue, rig, scrape, shadowView, ShadowBehaviour, type ShadowView, shadowsSettled } from './helpers/shadow-util.js'

async function patch (admin: string, name: string, body: string, token?: string): Promise<{ status: number, json: Record<string, unknown>, headers: Record<string, unknown> }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (token !== undefined) headers.authorization = token
  const res = await request(`${admin}/shadows/${name}`, { method: 'PATCH', body, headers })
  const text = await res.body.text()
  return { status: res.statusCode, json: JSON.parse(text) as Record<string, unknown>, headers: res.headers }
}

test('outcomes ok, error and timeout are counted in /metrics and GET /shadows; shadow latency is observed', async (t) => {
  const b = new ShadowBehaviour()
  const r = await rig({ shadows: ([u]) => [{ name: 'out', url: u, timeoutMs: 400 }], shadowHandler: b.json() })
  t.after(async () => { b.dispose(); await r.close() })
  const shadow = r.shadows[0]!
  const settled = async (n: number): Promise<void> => waitFor(async () => {
    const c = (await shadowView(r.app, 'out')).counters
    return c.ok + c.error + c.timeout === n
  }, 5000, `${n} outcomes`)
  for (let i = 0; i < 3; i++) await call(r.agent, `${r.proxy}/p`, { body: '{}' })
  await settled(3)
  shadow.handler = b.reset()
  for (let i = 0; i < 2; i++) await call(r.agent, `${r.proxy}/p`, { body: '{}' })
  await settled(5)
  shadow.handler = b.hang()
  await call(r.agent, `${r.proxy}/p`, { body: '{}' })
  await settled(6)
  const v = await shadowView(r.app, 'out')
  assert.deepEqual({ mirrored: v.counters.mirrored, ok: v.counters.ok, error: v.counters.error, timeout: v.counters.timeout }, { mirrored: 6, ok: 3, error: 2, timeout: 1 })
  const m = await scrape(r.app)
  assert.equal(metricValue(m, 'penumbra_shadow_requests_total', { shadow: 'out', outcome: 'ok' }), 3)
  assert.equal(metricValue(m, 'penumbra_shadow_requests_total', { shadow: 'out', outcome: 'error' }), 2)
  assert.equal(metricValue(m, 'penumbra_shadow_requests_total', { shadow: 'out', outcome: 'timeout' }), 1)
  assert.equal(metricValue(m, 'penumbra_upstream_duration_seconds_count', { upstream: 'out' }), 3)
  assert.equal(metricValue(m, 'penumbra_upstream_duration_seconds_count', { upstream: 'primary' }), 6)
  assert.equal(metricValue(m, 'penumbra_shadow_inflight', { shadow: 'out' }), 0)
  // Series exist from start-up at 0 for every reason.
  for (const reason of ['concurrency', 'body_too_large', 'not_matched', 'disabled', 'response_too_large']) {
    assert.match(m, new RegExp(`penumbra_shadow_skipped_total\\{[^}]*reason="${reason}"[^}]*\\} 0`))
  }
})

test('GET /shadows lists config, state and counters; GET /shadows/:name one of them, 404 for unknown', async (t) => {
  const r = await rig({ shadowCount: 2, shadows: (u) => [{ name: 'a', url: u[0], sampleRate: 0.5 }, { name: 'b', url: u[1], enabled: false }] })
  t.after(() => r.close())
  const res = await request(`${r.admin}/shadows`)
  assert.equal(res.statusCode, 200)
  const list = await res.body.json() as ShadowView[]
  assert.deepEqual(list.map((s) => s.name), ['a', 'b'])
  assert.deepEqual(list[0]!.state, { enabled: true, sampleRate: 0.5, inflight: 0 })
  assert.deepEqual(list[1]!.state, { enabled: false, sampleRate: 1, inflight: 0 })
  assert.equal(list[0]!.url, r.shadows[0]!.url)
  assert.deepEqual(Object.keys(list[0]!.counters).sort(), ['error', 'mirrored', 'ok', 'skipped', 'timeout'])
  const one = await request(`${r.admin}/shadows/b`)
  assert.equal(one.statusCode, 200)
  assert.equal((await one.body.json() as ShadowView).name, 'b')
  const missing = await request(`${r.admin}/shadows/nope`)
  assert.equal(missing.statusCode, 404)
  assert.equal((await missing.body.json() as { error: string }).error, 'PENUMBRA_NOT_FOUND')
})

test('PATCH sampleRate 0 stops mirroring for the next requests, 1 resumes; enabled false skips with reason disabled', async (t) => {
  const r = await rig({ shadows: ([u]) => [{ name: 'live', url: u }] })
  t.after(() => r.close())
  const shadow = r.shadows[0]!
  const burst = async (n: number, tag: string): Promise<void> => {
    for (let i = 0; i < n; i++) await call(r.agent, `${r.proxy}/p`, { body: '{}', headers: { 'x-request-id': `${tag}-${i}` } })
  }
  await burst(5, 'on')
  await waitFor(() => shadow.seen.length === 5, 5000, 'mirrored at 1')

  let p = await patch(r.admin, 'live', '{"sampleRate": 0}')
  assert.equal(p.status, 200)
  assert.equal((p.json.state as { sampleRate: number }).sampleRate, 0)
  await burst(20, 'zero')
  await shadowsSettled(r.app) // barrier: every mirrored call has ended
  assert.equal(shadow.seen.length, 5, 'nothing mirrored at sampleRate 0')

  p = await patch(r.admin, 'live', '{"sampleRate": 1}')
  assert.equal(p.status, 200)
  await burst(5, 'back')
  await waitFor(() => shadow.seen.length === 10, 5000, 'mirrored again at 1')
  assert.ok(shadow.seen.slice(5).every((s) => String(s.headers['x-request-id']).startsWith('back-')))

  p = await patch(r.admin, 'live', '{"enabled": false}')
  assert.equal(p.status, 200)
  assert.equal((p.json.state as { enabled: boolean }).enabled, false)
  await burst(4, 'off')
  await shadowsSettled(r.app) // barrier: every mirrored call has ended
  assert.equal(shadow.seen.length, 10)
  const v = await shadowView(r.app, 'live')
  assert.equal(v.counters.skipped.disabled, 4)
  assert.equal(metricValue(await scrape(r.app), 'penumbra_shadow_skipped_total', { shadow: 'live', reason: 'disabled' }), 4)

  p = await patch(r.admin, 'live', '{"enabled": true, "sampleRate": 1}')
  assert.equal(p.status, 200)
  await burst(1, 'again')
  await waitFor(() => shadow.seen.length === 11, 5000, 'mirrored after re-enabling')
})

test('PATCH with an invalid body answers 400 and changes nothing; unknown shadow 404', async (t) => {
  const r = await rig({ shadows: ([u]) => [{ name: 'v', url: u, sampleRate: 0.5 }] })
  t.after(() => r.close())
  const bad = ['{"sampleRate": 2}', '{"sampleRate": -0.1}', '{"sampleRate": "0.5"}', '{"sampleRate": null}', '{"enabled": "no"}',
    '{"enabled": 0}', '{}', '[]', 'null', '42', 'not json', '{"sampleRate": 0.1, "extra": true}', '']
  for (const body of bad) {
    const p = await patch(r.admin, 'v', body)
    assert.equal(p.status, 400, `body ${JSON.stringify(body)} → ${p.status}`)
    assert.equal(p.json.error, 'PENUMBRA_INVALID_REQUEST')
  }
  // The messages name the key (zod-validated, as the config is).
  const messages: Array<[string, string]> = [
    ['{"sampleRate": 2}', 'sampleRate: must be a number within 0..1'],
    ['{"enabled": "no"}', 'enabled: must be true or false'],
    ['{}', 'body: give sampleRate and/or enabled'],
    ['[]', 'body: must be a JSON object'],
    ['not json', 'body: must be a JSON object'],
    ['{"sampleRate": 0.1, "extra": true}', 'extra: unknown key (sampleRate and enabled can be changed at runtime)']
  ]
  for (const [body, message] of messages) assert.equal((await patch(r.admin, 'v', body)).json.message, message, body)
  const v = await shadowView(r.app, 'v')
  assert.deepEqual(v.state, { enabled: true, sampleRate: 0.5, inflight: 0 }, 'no invalid PATCH changed the state (not even partly)')
  const nf = await patch(r.admin, 'nope', '{"sampleRate": 0.1}')
  assert.equal(nf.status, 404)
  assert.equal(nf.json.error, 'PENUMBRA_NOT_FOUND')
})

test('admin token: PATCH without or with a wrong token → 401 (state unchanged), right token → 200; reads need it too, probes and /metrics do not', async (t) => {
  const token = 'sekrit-token-123'
  const r = await rig({ shadows: ([u]) => [{ name: 'tok', url: u }], extra: { admin: { host: '127.0.0.1', port: 0, token } } })
  t.after(() => r.close())
  for (const auth of [undefined, 'Bearer wrong-token-xyz', `Bearer ${token}x`, token, `Basic ${token}`, 'Bearer ']) {
    const p = await patch(r.admin, 'tok', '{"sampleRate": 0}', auth)
    assert.equal(p.status, 401, `authorization ${String(auth)}`)
    assert.equal(p.json.error, 'PENUMBRA_UNAUTHORIZED')
    assert.match(String(p.headers['www-authenticate']), /^Bearer/)
  }
  // Unauthenticated requests learn nothing about which shadows exist.
  assert.equal((await patch(r.admin, 'nope', '{"sampleRate": 0}')).status, 401)
  assert.equal((await shadowView(r.app, 'tok')).state.sampleRate, 1)
  const ok = await patch(r.admin, 'tok', '{"sampleRate": 0.25}', `Bearer ${token}`)
  assert.equal(ok.status, 200)
  assert.equal((await shadowView(r.app, 'tok')).state.sampleRate, 0.25)
  for (const path of ['/metrics', '/healthz', '/readyz', '/']) {
    const res = await request(`${r.admin}${path}`)
    await res.body.text()
    assert.equal(res.statusCode, 200, `GET ${path} without a token`)
  }
  for (const path of ['/shadows', '/shadows/tok', '/config', '/report', '/mismatches', '/noise', '/backends', '/primary']) {
    const res = await request(`${r.admin}${path}`)
    const body = await res.body.json() as { error: string }
    assert.equal(res.statusCode, 401, `GET ${path} without a token`)
    assert.equal(body.error, 'PENUMBRA_UNAUTHORIZED')
    const ok = await request(`${r.admin}${path}`, { headers: { authorization: `Bearer ${token}` } })
    await ok.body.text()
    assert.equal(ok.statusCode, 200, `GET ${path} with the token`)
  }
})

test('in-process reload resets PATCHed state to the file values and keeps counters', async (t) => {
  const r = await rig({ shadows: ([u]) => [{ name: 'rl', url: u, sampleRate: 1 }] })
  t.after(() => r.close())
  await call(r.agent, `${r.proxy}/p`, { body: '{}' })
  await waitFor(async () => (await shadowView(r.app, 'rl')).counters.ok === 1, 5000, 'one ok')
  assert.equal((await patch(r.admin, 'rl', '{"sampleRate": 0}')).status, 200)
  r.app.reload(testConfig({ primary: { url: r.primary.url }, shutdown: { timeoutMs: 200 }, shadows: [{ name: 'rl', url: r.shadows[0]!.url, sampleRate: 1 }] }))
  const v = await shadowView(r.app, 'rl')
  assert.equal(v.state.sampleRate, 1)
  assert.equal(v.counters.ok, 1)
  assert.equal(v.counters.mirrored, 1)
  await call(r.agent, `${r.proxy}/p`, { body: '{}' })
  await waitFor(() => r.shadows[0]!.seen.length === 2, 5000, 'mirrored after reload')
})

/** Two mirrored requests hang on the shadow while the config is reloaded; then they time out. */
async function reloadWhileInFlight (t: TestContext): Promise<{ m: string, v: ShadowView }> {
  const b = new ShadowBehaviour()
  const shadowCfg = (url: string): Record<string, unknown> => ({ name: 'inflight', url, timeoutMs: 500, maxConcurrency: 4 })
  const r = await rig({ shadows: ([u]) => [shadowCfg(u!)], shadowHandler: b.hang() })
  t.after(async () => { b.dispose(); await r.close() })
  await call(r.agent, `${r.proxy}/p`, { body: '{}' })
  await call(r.agent, `${r.proxy}/p`, { body: '{}' })
  await waitFor(() => r.shadows[0]!.seen.length === 2, 2000, 'both copies at the shadow')
  r.app.reload(testConfig({ primary: { url: r.primary.url }, shutdown: { timeoutMs: 200 }, shadows: [shadowCfg(r.shadows[0]!.url)] }))
  await waitFor(() => b.closedEarly === 2, 5000, 'both shadow calls timed out and were closed')
  await shadowsSettled(r.app) // barrier: both calls have been counted as ended
  return { m: await scrape(r.app), v: await shadowView(r.app, 'inflight') }
}

test('reload while shadow requests are in flight: penumbra_shadow_inflight returns to 0 (never negative)', {
}, async (t) => {
  const { m } = await reloadWhileInFlight(t)
  assert.equal(metricValue(m, 'penumbra_shadow_inflight', { shadow: 'inflight' }), 0)
})

test('reload while shadow requests are in flight: their outcomes are still counted in GET /shadows (as in /metrics)', {
}, async (t) => {
  const { m, v } = await reloadWhileInFlight(t)
  assert.equal(metricValue(m, 'penumbra_shadow_requests_total', { shadow: 'inflight', outcome: 'timeout' }), 2)
  assert.equal(v.counters.timeout, 2)
})

test('a shadow cannot be named "primary" (its series would merge with the primary\'s upstream metrics)', {
}, () => {
  assert.throws(() => testConfig({ primary: { url: 'http://127.0.0.1:1' }, shadows: [{ name: 'primary', url: 'http://127.0.0.1:2' }] }), /shadows\[0\]\.name/)
})
