// Issue #14: named backends, the router and blue/green switching, against real loopback servers.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request, Agent } from 'undici'
import { validateConfig, ConfigError } from '../src/index.js'
import { configWarnings } from '../src/config/schema.js'
import { startPenumbra, startUpstream, urls, waitFor, type Upstream } from './helpers/servers.js'
import { metricValue } from './helpers/shadow-util.js'
import { closedPortUrl } from './helpers/proxy-util.js'

/** An upstream that marks each answer with its own name (the backend's own marker header). */
function marked (name: string): Promise<Upstream> {
  return startUpstream((_req, res) => {
    const text = JSON.stringify({ from: name })
    res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name, 'content-length': Buffer.byteLength(text) })
    res.end(text)
  })
}

function problems (doc: unknown): string[] {
  try {
    validateConfig(doc)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  assert.fail('expected the config to be invalid')
}

const A = 'http://127.0.0.1:9001'
const B = 'http://127.0.0.1:9003'

test('config: backends and a named primary; the legacy form is the backend "primary"', () => {
  const c = validateConfig({ backends: { blue: { url: A, timeoutMs: 1000 }, green: { url: B } }, primary: 'blue', shadows: [{ name: 'v2', backend: 'green' }] })
  assert.equal(c.primary, 'blue')
  assert.equal(c.backends.blue!.timeoutMs, 1000)
  assert.equal(c.backends.green!.connections, 128)
  assert.equal(c.shadows[0]!.backend, 'green')
  const legacy = validateConfig({ primary: { url: A } })
  assert.equal(legacy.primary, 'primary')
  assert.equal(legacy.backends.primary!.url, A)
})

test('config: each bad reference names its key', () => {
  assert.deepEqual(problems({ backends: { blue: { url: A } }, primary: 'green' }), ['primary: names no backend ("green"; defined: blue)'])
  assert.deepEqual(problems({ backends: { blue: { url: A } }, primary: 'blue', shadows: [{ name: 'v2', backend: 'cand' }] }), ['shadows[0].backend: names no backend ("cand"; defined: blue)'])
  assert.deepEqual(problems({ backends: { blue: { url: A } }, primary: 'blue', shadows: [{ name: 'v2', backend: 'blue', url: B }] }), ['shadows[0]: needs exactly one of `url` and `backend`'])
  assert.deepEqual(problems({ backends: { blue: { url: A } }, primary: 'blue', shadows: [{ name: 'v2' }] }), ['shadows[0]: needs exactly one of `url` and `backend`'])
  assert.deepEqual(problems({ backends: { 'Blue!': { url: A } }, primary: 'blue' }).some((p) => p.startsWith('backends')), true)
  assert.deepEqual(problems({ backends: { blue: { url: A, timeoutMs: 'x' } }, primary: 'blue' }).map((p) => p.split(':')[0]), ['backends.blue.timeoutMs'])
  assert.deepEqual(problems({ backends: { blue: { url: A }, green: { url: 'http://127.0.0.1:8080' } }, primary: 'blue', listen: { port: 8080 } }),
    ['backends.green.url: points at penumbra itself (listen.host:listen.port): a request loop'])
  assert.deepEqual(problems({ backends: { primary: { url: A } }, primary: { url: B } }).map((p) => p.split(':')[0]), ['backends.primary'])
  assert.deepEqual(problems({ backends: { blue: { url: A }, green: { url: B } }, primary: 'blue', shadows: [{ name: 'green', url: A }] }).map((p) => p.split(':')[0]), ['shadows[0].name'])
  // Same origin under two names: a warning, not an error.
  assert.deepEqual(configWarnings(validateConfig({ backends: { blue: { url: A }, again: { url: A + '/' } }, primary: 'blue' })).length, 1)
})

test('blue/green under load: 20 switches and a rollback, zero failures, each answer from the backend active at its start', { timeout: 30_000 }, async (t) => {
  const blue = await marked('blue')
  const green = await marked('green')
  const app = await startPenumbra({ backends: { blue: { url: blue.url }, green: { url: green.url } }, primary: 'blue' })
  t.after(async () => { await app.stop(); await blue.close(); await green.close() })
  const { proxy, admin } = urls(app)
  const agent = new Agent({ connections: 8 })
  t.after(() => agent.close())

  // A request that no switch overlapped (the generation is the same at its start and its end)
  // must come from the backend active throughout; one that a switch overlapped may come from
  // either side of it, and must still succeed.
  let active = 'blue'
  let generation = 0
  let sent = 0
  let exact = 0
  const failures: string[] = []
  let stop = false
  const client = async (): Promise<void> => {
    while (!stop) {
      const expected = active
      const gen = generation
      const res = await request(`${proxy}/v1/models/m:predict`, { method: 'POST', body: '{"instances":[1]}', headers: { 'content-type': 'application/json' }, dispatcher: agent })
      await res.body.text()
      sent++
      if (res.statusCode !== 200) failures.push(`status ${res.statusCode}`)
      else if (gen === generation) {
        exact++
        if (res.headers['x-backend'] !== expected) failures.push(`expected ${expected}, got ${String(res.headers['x-backend'])}`)
      }
    }
  }
  const loops = [client(), client(), client(), client()]
  for (let i = 0; i < 20; i++) {
    const to = i % 2 === 0 ? 'green' : 'blue'
    const target = sent + 20
    while (sent < target) await new Promise((resolve) => setImmediate(resolve))
    generation++ // before the switch reaches the server: requests in flight now are overlapped
    const r = await request(`${admin}/primary`, { method: 'PUT', body: JSON.stringify({ backend: to }), headers: { 'content-type': 'application/json' } })
    assert.equal(r.statusCode, 200)
    const body = await r.body.json() as { from: string, to: string, switched: boolean }
    assert.deepEqual([body.from, body.to, body.switched], [active, to, true])
    active = to
    generation++
  }
  generation++
  const rb = await request(`${admin}/primary/rollback`, { method: 'POST' })
  assert.equal(rb.statusCode, 200)
  assert.equal((await rb.body.json() as { to: string }).to, 'green')
  active = 'green'
  generation++
  const target = sent + 20
  while (sent < target) await new Promise((resolve) => setImmediate(resolve))
  stop = true
  await Promise.all(loops)
  assert.deepEqual(failures, [])
  assert.ok(sent >= 400, `sent ${sent}`)
  assert.ok(exact >= sent / 4, `checked exactly: ${exact} of ${sent}`)

  const status = await (await request(`${admin}/primary`)).body.json() as { backend: string, previous: string, switches: number }
  assert.deepEqual([status.backend, status.previous, status.switches], ['green', 'blue', 21])
  const metrics = await (await request(`${admin}/metrics`)).body.text()
  assert.match(metrics, /penumbra_primary_switches_total\{from="blue",to="green"\} 11/)
  assert.match(metrics, /penumbra_primary_switches_total\{from="green",to="blue"\} 10/)
  assert.match(metrics, /penumbra_primary_backend\{backend="green"\} 1/)
  assert.match(metrics, /penumbra_primary_backend\{backend="blue"\} 0/)
  assert.match(metrics, /penumbra_backend_requests_total\{backend="green",code="200"\} \d+/)
  assert.match(metrics, /penumbra_upstream_duration_seconds_count\{upstream="blue"\} \d+/)
})

test('a request in flight finishes on the backend it started on (a slow stream across a switch)', { timeout: 10_000 }, async (t) => {
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  let started!: () => void
  const headSent = new Promise<void>((resolve) => { started = resolve })
  const blue = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': 'blue' })
    res.write('first;')
    started()
    void held.then(() => res.end('last'))
  })
  const green = await marked('green')
  const app = await startPenumbra({ backends: { blue: { url: blue.url }, green: { url: green.url } }, primary: 'blue' })
  t.after(async () => { await app.stop(); await blue.close(); await green.close() })
  const { proxy, admin } = urls(app)
  const slow = request(`${proxy}/stream`)
  await headSent
  const sw = await request(`${admin}/primary`, { method: 'PUT', body: '{"backend":"green"}' })
  assert.equal(sw.statusCode, 200)
  await sw.body.dump()
  const fresh = await request(`${proxy}/x`)
  assert.equal(fresh.headers['x-backend'], 'green')
  await fresh.body.dump()
  release()
  const res = await slow
  assert.equal(res.headers['x-backend'], 'blue')
  assert.equal(await res.body.text(), 'first;last')
})

test('PUT /primary: requireReady, unknown backend, bad body, idempotent repeat, rollback without a previous primary, token', { timeout: 10_000 }, async (t) => {
  const blue = await marked('blue')
  const down = await closedPortUrl()
  const app = await startPenumbra({ backends: { blue: { url: blue.url }, green: { url: down } }, primary: 'blue', admin: { host: '127.0.0.1', port: 0, token: 'secret-token' } })
  t.after(async () => { await app.stop(); await blue.close() })
  const { proxy, admin } = urls(app)
  const auth = { authorization: 'Bearer secret-token' }
  const put = async (body: string, headers: Record<string, string> = auth): Promise<{ status: number, json: any }> => {
    const r = await request(`${admin}/primary`, { method: 'PUT', body, headers })
    return { status: r.statusCode, json: await r.body.json() }
  }
  assert.equal((await put('{"backend":"green"}', {})).status, 401)
  const notReady = await put('{"backend":"green","requireReady":true}')
  assert.equal(notReady.status, 409)
  assert.equal(notReady.json.error, 'PENUMBRA_BACKEND_NOT_READY')
  assert.equal((await (await request(`${proxy}/x`)).body.json() as { from: string }).from, 'blue', 'nothing was switched')
  assert.equal((await put('{"backend":"nope"}')).status, 404)
  const bad = await put('{"backend":"green","extra":1}')
  assert.equal(bad.status, 400)
  assert.match(bad.json.message, /extra/)
  assert.equal((await put('not json')).status, 400)
  const rb = await request(`${admin}/primary/rollback`, { method: 'POST', headers: auth })
  assert.equal(rb.statusCode, 409)
  assert.equal((await rb.body.json() as { error: string }).error, 'PENUMBRA_CONFLICT')
  const same = await put('{"backend":"blue"}')
  assert.deepEqual([same.status, same.json.switched], [200, false])

  // Without requireReady the switch is made (the operator's call); the client then gets a 502
  // that names the backend, and /readyz follows the active primary.
  assert.equal((await put('{"backend":"green"}')).status, 200)
  const r502 = await request(`${proxy}/x`)
  assert.equal(r502.statusCode, 502)
  assert.match(await r502.body.text(), /backend \\?"green\\?"/)
  assert.equal((await request(`${admin}/readyz`)).statusCode, 503)
  const backends = await (await request(`${admin}/backends`, { headers: auth })).body.json() as Array<{ name: string, roles: string[], reachable: { ready: boolean }, inflight: number }>
  assert.deepEqual(backends.map((b) => [b.name, b.roles, b.reachable.ready, b.inflight]), [['blue', [], true, 0], ['green', ['primary'], false, 0]])
})

test('reload: a runtime switch survives while its backend exists; removing it falls back to the file\'s primary', { timeout: 10_000 }, async (t) => {
  const blue = await marked('blue')
  const green = await marked('green')
  const app = await startPenumbra({ backends: { blue: { url: blue.url }, green: { url: green.url } }, primary: 'blue', shadows: [{ name: 'green', backend: 'green', sampleRate: 0 }] })
  t.after(async () => { await app.stop(); await blue.close(); await green.close() })
  const { proxy } = urls(app)
  await app.switchPrimary({ backend: 'green' }, 'test')
  const base = { listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 }, log: { level: 'silent', access: false } }
  const notes = app.reload(validateConfig({ ...base, backends: { blue: { url: blue.url }, green: { url: green.url } }, primary: 'blue' }))
  assert.ok(notes.some((n) => /differs from the file's primary "blue"/.test(n)), notes.join('; '))
  assert.equal((await (await request(`${proxy}/x`)).body.json() as { from: string }).from, 'green')
  const notes2 = app.reload(validateConfig({ ...base, backends: { blue: { url: blue.url } }, primary: 'blue' }))
  assert.ok(notes2.some((n) => /fell back to the file's primary "blue"/.test(n)), notes2.join('; '))
  assert.equal((await (await request(`${proxy}/x`)).body.json() as { from: string }).from, 'blue')
})

test('a shadow that names a backend shares its dispatcher; per-shadow outcomes are counted as each call ends', { timeout: 10_000 }, async (t) => {
  const blue = await marked('blue')
  const cand = await marked('cand')
  let hang!: () => void
  const stalled = new Promise<void>((resolve) => { hang = resolve })
  const slow = await startUpstream((_req, res) => { void stalled.then(() => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"from":"slow"}') }) })
  const app = await startPenumbra({
    backends: { blue: { url: blue.url }, cand: { url: cand.url } },
    primary: 'blue',
    shadows: [{ name: 'cand', backend: 'cand', sampleRate: 1 }, { name: 'slow', url: slow.url, sampleRate: 1, timeoutMs: 5000 }]
  })
  t.after(async () => { hang(); await app.stop(); await blue.close(); await cand.close(); await slow.close() })
  const { proxy, admin } = urls(app)
  const res = await request(`${proxy}/v1/models/m:predict`, { method: 'POST', body: '{"instances":[1]}', headers: { 'content-type': 'application/json' } })
  assert.equal(res.headers['x-backend'], 'blue')
  await res.body.dump()
  // The healthy shadow's outcome is counted while the slow one still holds the join open.
  const until = Date.now() + 5000
  let text = ''
  while (Date.now() < until) {
    text = await (await request(`${admin}/metrics`)).body.text()
    if (/penumbra_shadow_requests_total\{shadow="cand",outcome="ok"\} 1/.test(text)) break
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  assert.match(text, /penumbra_shadow_requests_total\{shadow="cand",outcome="ok"\} 1/)
  assert.match(text, /penumbra_shadow_requests_total\{shadow="slow",outcome="ok"\} 0/)
  const backends = await (await request(`${admin}/backends`)).body.json() as Array<{ name: string, roles: string[] }>
  assert.deepEqual(backends.map((b) => [b.name, b.roles]), [['blue', ['primary']], ['cand', ['shadow:cand']]])
  assert.equal(app.shadows.get('cand')!.pool, app.backends.get('cand')!.dispatcher, 'one pool per backend')
})

test('per-shadow outcomes are counted when that shadow\'s call ends, not when the slowest shadow of the request does', async (t) => {
  const primary = await marked('blue')
  const fast = await marked('fast')
  let release: (() => void) | null = null
  const gate = new Promise<void>((resolve) => { release = resolve })
  const slow = await startUpstream((_req, res) => {
    void gate.then(() => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"from":"slow"}') })
  })
  const app = await startPenumbra({
    primary: { url: primary.url },
    shadows: [{ name: 'fast', url: fast.url, sampleRate: 1 }, { name: 'slow', url: slow.url, sampleRate: 1, timeoutMs: 30_000 }]
  })
  t.after(async () => { release?.(); await app.stop(); await Promise.all([primary.close(), fast.close(), slow.close()]) })
  const { proxy, admin } = urls(app)
  const res = await request(`${proxy}/v1/models/m:predict`, { method: 'POST', body: '{"instances":[1]}', headers: { 'content-type': 'application/json' } })
  assert.equal(res.statusCode, 200)
  await res.body.text()
  const metrics = async (): Promise<string> => await (await request(`${admin}/metrics`)).body.text()
  // The slow shadow has received its copy and holds it: the fast one's counters must be in already.
  await waitFor(() => slow.seen.length === 1, 5000, 'the slow shadow to receive its copy')
  await waitFor(async () => metricValue(await metrics(), 'penumbra_shadow_requests_total', { shadow: 'fast', outcome: 'ok' }) === 1, 5000, 'the fast shadow to be counted')
  let text = await metrics()
  assert.equal(metricValue(text, 'penumbra_upstream_duration_seconds_count', { upstream: 'fast' }), 1)
  assert.equal(metricValue(text, 'penumbra_shadow_requests_total', { shadow: 'slow', outcome: 'ok' }), 0, 'the slow shadow is still pending')
  release!()
  await waitFor(async () => metricValue(await metrics(), 'penumbra_shadow_requests_total', { shadow: 'slow', outcome: 'ok' }) === 1, 5000, 'the slow shadow to be counted')
  text = await metrics()
  assert.equal(metricValue(text, 'penumbra_shadow_requests_total', { shadow: 'fast', outcome: 'ok' }), 1)
})
