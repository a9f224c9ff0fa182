import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { waitFor } from './helpers/servers.js'
import { call, rig, sha256, shadowView, metricValue, scrape, shadowsSettled } from './helpers/shadow-util.js'

/** Raw header pairs as a list of [lower-name, value], framing and Host left out. */
function endToEnd (raw: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!.toLowerCase()
    if (n === 'host' || n === 'content-length' || n === 'transfer-encoding' || n === 'connection' || n === 'keep-alive') continue
    out.push([n, raw[i + 1]!])
  }
  return out
}

test('the shadow receives the exact method, path, query, body, end-to-end headers and request id, plus x-penumbra-shadow; Host is its own', async (t) => {
  const r = await rig({ shadows: ([u]) => [{ name: 'cand', url: u }] })
  t.after(() => r.close())
  const body = randomBytes(64 * 1024)
  const path = '/v1/models/iris:predict?a=1&b=%20x&a=2'
  const got = await call(r.agent, r.proxy + path, {
    headers: [
      'Content-Type', 'application/octet-stream',
      'X-Custom', 'Foo Bar',
      'x-multi', 'one',
      'x-multi', 'two',
      'Accept', 'application/json',
      'Authorization', 'Bearer client-token',
      'X-Request-Id', 'req-exact-1'
    ],
    body
  })
  assert.equal(got.status, 200)
  await waitFor(() => r.shadows[0]!.seen.length === 1, 5000, 'the shadow request')
  const p = r.primary.seen[0]!
  const s = r.shadows[0]!.seen[0]!
  assert.equal(s.method, 'POST')
  assert.equal(s.url, path)
  assert.equal(s.sha256, sha256(body))
  assert.equal(s.body.length, body.length)
  assert.equal(s.headers['content-length'], String(body.length))
  assert.equal(s.headers['x-request-id'], 'req-exact-1')
  assert.equal(p.headers['x-request-id'], 'req-exact-1')
  assert.equal(got.headers['x-request-id'], 'req-exact-1')
  assert.equal(s.headers['x-penumbra-shadow'], 'cand')
  assert.equal(p.headers['x-penumbra-shadow'], undefined, 'the primary does not get the shadow marker')
  assert.equal(s.headers.host, `127.0.0.1:${r.shadows[0]!.port}`)
  assert.equal(p.headers.host, `127.0.0.1:${r.primary.port}`)
  assert.ok(!String(s.headers.host).includes('-shadow'))
  // Every end-to-end header the primary got, in the same order and case-insensitively equal, plus the marker.
  const pe = endToEnd(p.rawHeaders)
  const se = endToEnd(s.rawHeaders).filter(([n]) => n !== 'x-penumbra-shadow')
  assert.deepEqual(se, pe)
  assert.deepEqual(s.headers['x-multi'], p.headers['x-multi'])
  assert.equal(s.headers['x-custom'], 'Foo Bar')
  assert.equal(s.headers.authorization, 'Bearer client-token')
})

test('a chunked request body reaches the shadow intact, with a consistent Content-Length', async (t) => {
  const r = await rig({ shadows: ([u]) => [{ name: 'cand', url: u }] })
  t.after(() => r.close())
  const parts = [randomBytes(10_000), randomBytes(20_000), randomBytes(5)]
  async function * gen (): AsyncGenerator<Buffer> { for (const p of parts) yield p }
  const got = await call(r.agent, `${r.proxy}/chunked`, { body: gen(), headers: { 'content-type': 'application/octet-stream' } })
  assert.equal(got.status, 200)
  await waitFor(() => r.shadows[0]!.seen.length === 1, 5000, 'the shadow request')
  const whole = Buffer.concat(parts)
  assert.equal(r.primary.seen[0]!.sha256, sha256(whole))
  const s = r.shadows[0]!.seen[0]!
  assert.equal(s.sha256, sha256(whole))
  assert.equal(s.headers['transfer-encoding'], undefined)
  assert.equal(s.headers['content-length'], String(whole.length))
})

test('rewrites: path regex and JSON pointer sets on the shadow copy only; Content-Length matches the new body', async (t) => {
  const r = await rig({
    shadows: ([u]) => [{
      name: 'cand',
      url: u,
      rewrite: {
        path: { from: '^/v1/models/([^/:]+):predict', to: '/v2/models/$1-candidate/infer' },
        json: { '/model': 'candidate', '/params/temperature': 0, '/tags/-': 'shadow' }
      }
    }]
  })
  t.after(() => r.close())
  const doc = { model: 'prod-model', instances: [[1, 2, 3]], params: { temperature: 0.7, top_p: 1 }, tags: ['a'], note: 'ü€' }
  const text = JSON.stringify(doc)
  const got = await call(r.agent, `${r.proxy}/v1/models/iris:predict?verbose=1`, { body: text, headers: { 'content-type': 'application/json' } })
  assert.equal(got.status, 200)
  await waitFor(() => r.shadows[0]!.seen.length === 1, 5000, 'the shadow request')
  const p = r.primary.seen[0]!
  const s = r.shadows[0]!.seen[0]!
  assert.equal(p.url, '/v1/models/iris:predict?verbose=1', 'the primary path is untouched')
  assert.equal(p.body.toString('utf8'), text, 'the primary body is untouched')
  assert.equal(s.url, '/v2/models/iris-candidate/infer?verbose=1')
  const sdoc = JSON.parse(s.body.toString('utf8'))
  assert.deepEqual(sdoc, { ...doc, model: 'candidate', params: { temperature: 0, top_p: 1 }, tags: ['a', 'shadow'] })
  assert.equal(s.headers['content-length'], String(s.body.length))
  assert.notEqual(s.body.length, p.body.length)
})

test('rewrite.json on a body it cannot rewrite skips the copy (rewrite_failed) instead of sending the production body', async (t) => {
  const r = await rig({ shadows: ([u]) => [{ name: 'cand', url: u, rewrite: { json: { '/model': 'x' } } }] })
  t.after(() => r.close())
  for (const body of ['not json {', '"a JSON string"']) {
    const got = await call(r.agent, `${r.proxy}/p`, { body, headers: { 'content-type': 'text/plain' } })
    assert.equal(got.status, 200, 'the client is answered as usual')
  }
  // Barrier: a rewritable request after them; the shadow's first request must be this one.
  await call(r.agent, `${r.proxy}/p`, { body: '{"model":"prod"}', headers: { 'content-type': 'application/json' } })
  await waitFor(() => r.shadows[0]!.seen.length === 1, 5000, 'the shadow request')
  assert.deepEqual(JSON.parse(r.shadows[0]!.seen[0]!.body.toString()), { model: 'x' })
  assert.equal(r.primary.seen.length, 3)
  const text = await scrape(r.app)
  assert.equal(metricValue(text, 'penumbra_shadow_skipped_total', { shadow: 'cand', reason: 'rewrite_failed' }), 2)
  assert.equal((await shadowView(r.app, 'cand')).counters.skipped.rewrite_failed, 2)
})

test('headers.set adds headers and headers.remove removes them, on the shadow copy only', async (t) => {
  const r = await rig({
    shadows: ([u]) => [{ name: 'cand', url: u, headers: { set: { 'X-Api-Key': 'shadow-key', 'x-env': 'shadow' }, remove: ['Authorization', 'x-drop-me'] } }]
  })
  t.after(() => r.close())
  await call(r.agent, `${r.proxy}/p`, {
    body: '{}',
    headers: { 'content-type': 'application/json', authorization: 'Bearer prod', 'x-drop-me': '1', 'x-keep': 'k' }
  })
  await waitFor(() => r.shadows[0]!.seen.length === 1, 5000, 'the shadow request')
  const p = r.primary.seen[0]!
  const s = r.shadows[0]!.seen[0]!
  assert.equal(s.headers['x-api-key'], 'shadow-key')
  assert.equal(s.headers['x-env'], 'shadow')
  assert.equal(s.headers.authorization, undefined)
  assert.equal(s.headers['x-drop-me'], undefined)
  assert.equal(s.headers['x-keep'], 'k')
  assert.equal(p.headers.authorization, 'Bearer prod')
  assert.equal(p.headers['x-drop-me'], '1')
  assert.equal(p.headers['x-api-key'], undefined)
})

test('headers.set replaces a header the client also sent (no duplicate, no client value)', {
}, async (t) => {
  const r = await rig({ shadows: ([u]) => [{ name: 'cand', url: u, headers: { set: { 'x-api-key': 'shadow-key' } } }] })
  t.after(() => r.close())
  await call(r.agent, `${r.proxy}/p`, { body: '{}', headers: { 'content-type': 'application/json', 'X-Api-Key': 'client-key' } })
  await waitFor(() => r.shadows[0]!.seen.length === 1, 5000, 'the shadow request')
  const s = r.shadows[0]!.seen[0]!
  assert.equal(s.headers['x-api-key'], 'shadow-key')
  assert.equal(r.primary.seen[0]!.headers['x-api-key'], 'client-key')
})

test('client-sent x-penumbra-* headers that penumbra sets are stripped: the primary gets none, the shadow only its own marker (#21)', async (t) => {
  const r = await rig({ shadows: ([u]) => [{ name: 'cand', url: u }] })
  t.after(() => r.close())
  await call(r.agent, `${r.proxy}/p`, {
    body: '{}',
    headers: { 'content-type': 'application/json', 'X-Penumbra-Shadow': 'forged', 'x-penumbra-experiment': 'ab=treatment', 'x-penumbra-fault': 'f', 'x-penumbra-other': 'kept' }
  })
  await waitFor(() => r.shadows[0]!.seen.length === 1, 5000, 'the shadow request')
  const p = r.primary.seen[0]!.headers
  const s = r.shadows[0]!.seen[0]!.headers
  assert.deepEqual([p['x-penumbra-shadow'], p['x-penumbra-experiment'], p['x-penumbra-fault']], [undefined, undefined, undefined])
  assert.equal(s['x-penumbra-shadow'], 'cand', 'one value, penumbra\'s own')
  assert.deepEqual([s['x-penumbra-experiment'], s['x-penumbra-fault']], [undefined, undefined])
  // Headers penumbra does not set pass as any end-to-end header does.
  assert.equal(p['x-penumbra-other'], 'kept')
})

test('by default only POST is mirrored; other methods count not_matched', async (t) => {
  const r = await rig({ shadows: ([u]) => [{ name: 'cand', url: u }] })
  t.after(() => r.close())
  for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const) {
    const got = await call(r.agent, `${r.proxy}/v1/models/m:predict`, { method, body: method === 'GET' || method === 'OPTIONS' ? null : '{}' })
    assert.equal(got.status, 200)
  }
  await call(r.agent, `${r.proxy}/v1/models/m:predict`, { method: 'POST', body: '{"x":1}', headers: { 'x-request-id': 'the-post' } })
  await waitFor(() => r.shadows[0]!.seen.length === 1, 5000, 'the POST mirrored')
  await shadowsSettled(r.app) // barrier: every mirrored call has ended
  assert.equal(r.primary.seen.length, 6)
  assert.equal(r.shadows[0]!.seen.length, 1)
  assert.equal(r.shadows[0]!.seen[0]!.headers['x-request-id'], 'the-post')
  const v = await shadowView(r.app, 'cand')
  assert.equal(v.counters.skipped.not_matched, 5)
  assert.equal(v.counters.mirrored, 1)
  assert.equal(metricValue(await scrape(r.app), 'penumbra_shadow_skipped_total', { shadow: 'cand', reason: 'not_matched' }), 5)
})

test('match.methods and match.paths globs select what is mirrored (query excluded from the match)', async (t) => {
  const r = await rig({
    shadows: ([u]) => [{ name: 'cand', url: u, match: { methods: ['POST', 'PUT'], paths: ['/v1/models/*:predict', '/v2/**'] } }]
  })
  t.after(() => r.close())
  const cases: Array<[string, string, boolean]> = [
    ['POST', '/v1/models/iris:predict', true],
    ['PUT', '/v1/models/iris:predict', true],
    ['POST', '/v1/models/iris:predict?next=/v9/x', true],
    ['POST', '/v1/models/a/b:predict', false],
    ['POST', '/v1/models/iris:explain', false],
    ['POST', '/v2/models/x/versions/3/infer', true],
    ['POST', '/v3/models/x', false],
    ['DELETE', '/v2/models/x', false],
    ['GET', '/v2/models/x', false]
  ]
  let i = 0
  for (const [method, path] of cases) {
    await call(r.agent, r.proxy + path, { method: method as 'POST', body: method === 'GET' ? null : '{}', headers: { 'x-request-id': `case-${i++}` } })
  }
  const want = cases.map((c, k) => [c, k] as const).filter(([c]) => c[2]).map(([, k]) => `case-${k}`)
  await waitFor(() => r.shadows[0]!.seen.length === want.length, 5000, 'the matched requests mirrored')
  await shadowsSettled(r.app) // barrier: every mirrored call has ended
  assert.deepEqual(r.shadows[0]!.seen.map((s) => String(s.headers['x-request-id'])).sort(), want.sort())
  const v = await shadowView(r.app, 'cand')
  assert.equal(v.counters.skipped.not_matched, cases.length - want.length)
})
