import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import dns from 'node:dns'
import { createServer } from 'node:net'
import { Client } from 'undici'
import type { Penumbra } from '../src/index.js'
import { startPenumbra, startUpstream, urls, waitFor, type Handler, type Upstream } from './helpers/servers.js'
import {
  call, metricValue, newAgent, pool, PRIMARY_BODY, primaryHandler, rig, scrape, shadowView, stableHeaders,
  ShadowBehaviour, type Got, type Rig
} from './helpers/shadow-util.js'

// A baseline penumbra without shadows in front of the same kind of primary: every isolation case
// compares its client response with this one, byte for byte (status, headers except Date, body).
let basePrimary: Upstream
let baseApp: Penumbra
const baseAgent = newAgent()
const REQUEST_BODY = JSON.stringify({ instances: [[5.1, 3.5, 1.4, 0.2]] })
const send = (agent: Parameters<typeof call>[0], proxy: string, id: string): Promise<Got> =>
  call(agent, `${proxy}/v1/models/iris:predict`, { body: REQUEST_BODY, headers: { 'content-type': 'application/json', 'x-request-id': id } })

let baseline: Got
before(async () => {
  basePrimary = await startUpstream(primaryHandler)
  baseApp = await startPenumbra({ primary: { url: basePrimary.url }, shutdown: { timeoutMs: 200 } })
  baseline = await send(baseAgent, urls(baseApp).proxy, 'iso-1')
  assert.equal(baseline.status, 200)
  assert.deepEqual(baseline.body, PRIMARY_BODY)
})
after(async () => {
  await baseAgent.close()
  await baseApp.stop()
  await basePrimary.close()
})

function assertSameAsBaseline (got: Got): void {
  assert.equal(got.status, baseline.status)
  assert.deepEqual(stableHeaders(got.headers), stableHeaders(baseline.headers))
  assert.ok(got.body.equals(baseline.body), 'the primary response body is byte-identical to the no-shadow baseline')
}

/** Process still serves: another proxied request and the admin health check. */
async function stillServing (r: Rig): Promise<void> {
  const again = await send(r.agent, r.proxy, 'iso-1')
  assertSameAsBaseline(again)
  const h = await call(r.agent, `${r.admin}/healthz`, { method: 'GET' })
  assert.equal(h.status, 200)
}

async function shadowRig (handler: Handler, shadow: Record<string, unknown> = {}): Promise<Rig> {
  return await rig({ shadows: ([u]) => [{ name: 'iso', url: u, ...shadow }], shadowHandler: handler })
}

test('a shadow answering in 5 s (timeoutMs 10000): the client has its full response while the shadow is pending, well under 1 s', async (t) => {
  const b = new ShadowBehaviour()
  const r = await shadowRig(b.delayed(5000), { timeoutMs: 10_000 })
  t.after(async () => { b.dispose(); await r.close() })
  const t0 = Date.now()
  const got = await send(r.agent, r.proxy, 'iso-1')
  assertSameAsBaseline(got)
  assert.ok(got.at - t0 < 1000, `client took ${got.at - t0} ms`)
  await waitFor(() => r.shadows[0]!.seen.length === 1, 2000, 'the shadow got its copy')
  assert.equal(b.responded.length, 0, 'the shadow had not answered when the client finished')
  const v = await shadowView(r.app, 'iso')
  assert.equal(v.state.inflight, 1, 'the mirrored request is still in flight')
  assert.equal(v.counters.ok + v.counters.error + v.counters.timeout, 0)
  await stillServing(r)
})

test('a shadow that never answers: client unaffected; the shadow times out (outcome timeout) after the client finished', async (t) => {
  const b = new ShadowBehaviour()
  const r = await shadowRig(b.hang(), { timeoutMs: 1000 })
  t.after(async () => { b.dispose(); await r.close() })
  const t0 = Date.now()
  const got = await send(r.agent, r.proxy, 'iso-1')
  assertSameAsBaseline(got)
  assert.ok(got.at - t0 < 1000)
  const atClient = await shadowView(r.app, 'iso')
  assert.equal(atClient.counters.timeout, 0, 'the client finished before the shadow timed out')
  await waitFor(async () => (await shadowView(r.app, 'iso')).counters.timeout === 1, 5000, 'the timeout outcome')
  const m = await scrape(r.app)
  assert.equal(metricValue(m, 'penumbra_shadow_requests_total', { shadow: 'iso', outcome: 'timeout' }), 1)
  assert.equal(metricValue(m, 'penumbra_shadow_inflight', { shadow: 'iso' }), 0, 'the semaphore place is given back')
  await waitFor(() => b.closedEarly === 1, 2000, 'penumbra closed the hanging shadow connection')
  await stillServing(r)
})

test('a shadow that sends its head, then stalls the body: its timeoutMs still ends the call (outcome timeout)', async (t) => {
  // The call's own deadline is the only timer on a mirrored request (undici's per-phase timers
  // are off), so it has to cover a body that stops flowing, not only a missing head.
  const b = new ShadowBehaviour()
  const r = await shadowRig(b.stallBody(), { timeoutMs: 500 })
  t.after(async () => { b.dispose(); await r.close() })
  const got = await send(r.agent, r.proxy, 'iso-1')
  assertSameAsBaseline(got)
  await waitFor(async () => (await shadowView(r.app, 'iso')).counters.timeout === 1, 5000, 'the timeout outcome')
  assert.equal(metricValue(await scrape(r.app), 'penumbra_shadow_inflight', { shadow: 'iso' }), 0, 'the semaphore place is given back')
  await waitFor(() => b.closedEarly === 1, 2000, 'penumbra closed the stalled shadow connection')
  await stillServing(r)
})

test('a shadow that resets the connection: client unaffected; outcome error', async (t) => {
  const b = new ShadowBehaviour()
  const r = await shadowRig(b.reset())
  t.after(async () => { b.dispose(); await r.close() })
  const got = await send(r.agent, r.proxy, 'iso-1')
  assertSameAsBaseline(got)
  await waitFor(async () => (await shadowView(r.app, 'iso')).counters.error === 1, 5000, 'the error outcome')
  assert.equal(metricValue(await scrape(r.app), 'penumbra_shadow_requests_total', { shadow: 'iso', outcome: 'error' }), 1)
  await stillServing(r)
})

test('a shadow answering 500: client unaffected; counted exactly once', async (t) => {
  const b = new ShadowBehaviour()
  const r = await shadowRig(b.json(500, '{"error":"boom"}'))
  t.after(async () => { b.dispose(); await r.close() })
  const got = await send(r.agent, r.proxy, 'iso-1')
  assertSameAsBaseline(got)
  await waitFor(async () => { const c = (await shadowView(r.app, 'iso')).counters; return c.ok + c.error + c.timeout === 1 }, 5000, 'the outcome')
  // An HTTP answer, whatever its status, is transport outcome "ok"; the status difference is the comparison's business.
  assert.equal((await shadowView(r.app, 'iso')).counters.ok, 1)
  await stillServing(r)
})

test('a shadow sending 50 MB (maxResponseBytes 4 MB): cut off, response_too_large counted, client unaffected', async (t) => {
  const b = new ShadowBehaviour()
  const r = await shadowRig(b.huge(50 * 1024 * 1024), { maxResponseBytes: 4 * 1024 * 1024 })
  t.after(async () => { b.dispose(); await r.close() })
  const got = await send(r.agent, r.proxy, 'iso-1')
  assertSameAsBaseline(got)
  await waitFor(async () => (await shadowView(r.app, 'iso')).counters.skipped.response_too_large === 1, 10_000, 'response_too_large')
  await waitFor(() => b.closedEarly === 1, 5000, 'the shadow connection was cut before 50 MB')
  assert.equal(b.responded.length, 0, 'the 50 MB were never fully read')
  assert.equal(metricValue(await scrape(r.app), 'penumbra_shadow_skipped_total', { shadow: 'iso', reason: 'response_too_large' }), 1)
  await stillServing(r)
})

test('a shadow that is down (ECONNREFUSED): client unaffected; outcome error', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port
      s.close(() => resolve(p))
    })
  })
  const primary = await startUpstream(primaryHandler)
  const app = await startPenumbra({ primary: { url: primary.url }, shutdown: { timeoutMs: 200 }, shadows: [{ name: 'down', url: `http://127.0.0.1:${port}` }] })
  const agent = newAgent()
  t.after(async () => { await agent.close(); await app.stop(); await primary.close() })
  const got = await send(agent, urls(app).proxy, 'iso-1')
  assertSameAsBaseline(got)
  await waitFor(async () => (await shadowView(app, 'down')).counters.error === 1, 5000, 'the error outcome')
  const m = await scrape(app)
  assert.equal(metricValue(m, 'penumbra_shadow_requests_total', { shadow: 'down', outcome: 'error' }), 1)
  assert.equal(metricValue(m, 'penumbra_upstream_errors_total', { upstream: 'down', reason: 'refused' }), 1)
  assert.equal(metricValue(m, 'penumbra_shadow_inflight', { shadow: 'down' }), 0)
  assert.equal((await send(agent, urls(app).proxy, 'iso-1')).status, 200)
})

test('an unresolvable shadow host (.invalid): client unaffected; outcome error; no lookup leaves the process', async (t) => {
  // Answer lookups of *.invalid locally (RFC 6761: they never resolve), so no DNS query leaves loopback.
  const realLookup = dns.lookup
  const asked: string[] = []
  ;(dns as { lookup: unknown }).lookup = function (hostname: string, ...rest: unknown[]) {
    if (typeof hostname === 'string' && hostname.endsWith('.invalid')) {
      asked.push(hostname)
      const cb = rest[rest.length - 1] as (err: Error) => void
      const err = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname, syscall: 'getaddrinfo' })
      process.nextTick(cb, err)
      return {}
    }
    return (realLookup as (...a: unknown[]) => unknown).call(dns, hostname, ...rest)
  } as typeof dns.lookup
  t.after(() => { (dns as { lookup: unknown }).lookup = realLookup })
  const primary = await startUpstream(primaryHandler)
  const app = await startPenumbra({ primary: { url: primary.url }, shutdown: { timeoutMs: 200 }, shadows: [{ name: 'nowhere', url: 'http://nonexistent.invalid:9' }] })
  const agent = newAgent()
  t.after(async () => { await agent.close(); await app.stop(); await primary.close() })
  const got = await send(agent, urls(app).proxy, 'iso-1')
  assertSameAsBaseline(got)
  await waitFor(async () => (await shadowView(app, 'nowhere')).counters.error === 1, 5000, 'the error outcome')
  assert.ok(asked.includes('nonexistent.invalid'), 'the lookup went through the local stub')
  const m = await scrape(app)
  assert.equal(metricValue(m, 'penumbra_upstream_errors_total', { upstream: 'nowhere', reason: 'dns' }), 1)
  assert.equal((await send(agent, urls(app).proxy, 'iso-1')).status, 200)
})

test('keep-alive: the next request on the same client connection is served while the shadow is still pending', async (t) => {
  const b = new ShadowBehaviour()
  const r = await shadowRig(b.hang(), { timeoutMs: 30_000 })
  let connections = 0
  r.app.proxy.server.on('connection', () => { connections++ })
  const client = new Client(r.proxy, { pipelining: 1 })
  t.after(async () => { await client.close(); b.dispose(); await r.close() })
  const first = await send(client, r.proxy, 'iso-1')
  assertSameAsBaseline(first)
  await waitFor(() => r.shadows[0]!.seen.length === 1, 2000, 'the shadow got the first copy')
  const second = await send(client, r.proxy, 'iso-1')
  assertSameAsBaseline(second)
  const third = await send(client, r.proxy, 'iso-1')
  assertSameAsBaseline(third)
  assert.equal(connections, 1, 'all three requests used one client connection')
  assert.equal(b.held.size, 3, 'the shadow copies of all three are still pending')
  assert.equal(b.responded.length, 0)
})

test('memory bounded: 300 requests at 100% to a hanging shadow with maxConcurrency 8', async (t) => {
  const b = new ShadowBehaviour()
  const r = await shadowRig(b.hang(), { timeoutMs: 30_000, maxConcurrency: 8 })
  t.after(async () => { b.dispose(); await r.close() })
  let maxGauge = 0
  let maxRuntime = 0
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      const g = await r.app.metrics.shadowInflight.get()
      for (const v of g.values) if (v.labels.shadow === 'iso') maxGauge = Math.max(maxGauge, v.value)
      maxRuntime = Math.max(maxRuntime, r.app.shadows.get('iso')!.inflight)
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
  })()
  const t0 = Date.now()
  const got = await pool(300, 25, (i) => call(r.agent, `${r.proxy}/v1/models/iris:predict`, { body: REQUEST_BODY, headers: { 'content-type': 'application/json', 'x-request-id': `m-${i}` } }))
  const elapsed = Date.now() - t0
  sampling = false
  await sampler
  assert.ok(got.every((g) => g.status === 200 && g.body.equals(PRIMARY_BODY)), 'every primary response is intact')
  assert.ok(elapsed < 15_000, `300 requests took ${elapsed} ms`)
  const v = await shadowView(r.app, 'iso')
  assert.equal(v.counters.mirrored, 8)
  assert.equal(v.counters.skipped.concurrency, 292)
  assert.ok(maxGauge <= 8, `penumbra_shadow_inflight peaked at ${maxGauge}`)
  assert.ok(maxRuntime <= 8, `runtime inflight peaked at ${maxRuntime}`)
  const m = await scrape(r.app)
  assert.equal(metricValue(m, 'penumbra_shadow_skipped_total', { shadow: 'iso', reason: 'concurrency' }), 292)
  assert.equal(metricValue(m, 'penumbra_shadow_inflight', { shadow: 'iso' }), 8)
  assert.equal(r.shadows[0]!.seen.length, 8, 'the shadow received exactly maxConcurrency copies')
  assert.equal(r.app.shadows.inflight, 8)
})

test('after a hanging shadow times out, its concurrency places are reused', async (t) => {
  const b = new ShadowBehaviour()
  const r = await shadowRig(b.hang(), { timeoutMs: 300, maxConcurrency: 2 })
  t.after(async () => { b.dispose(); await r.close() })
  await pool(4, 4, () => send(r.agent, r.proxy, 'iso-1'))
  const v1 = await shadowView(r.app, 'iso')
  assert.equal(v1.counters.mirrored, 2)
  assert.equal(v1.counters.skipped.concurrency, 2)
  await waitFor(async () => (await shadowView(r.app, 'iso')).counters.timeout === 2, 5000, 'both timed out')
  await waitFor(async () => (await shadowView(r.app, 'iso')).state.inflight === 0, 2000, 'places given back')
  await send(r.agent, r.proxy, 'iso-1')
  assert.equal((await shadowView(r.app, 'iso')).counters.mirrored, 3)
})
