import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { connect, createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { startPenumbra, startUpstream, urls, waitFor } from './helpers/servers.js'
import { call, metricValue, newAgent, primaryHandler, rig, scrape, sha256, shadowView, shadowsSettled } from './helpers/shadow-util.js'

async function * chunks (parts: Buffer[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield p
}

test('Content-Length over maxBodyBytes: not mirrored, body_too_large counted; the boundary value is mirrored', async (t) => {
  const r = await rig({ shadows: ([u]) => [{ name: 'small', url: u, maxBodyBytes: 1000 }] })
  t.after(() => r.close())
  const atLimit = randomBytes(1000)
  const over = randomBytes(1001)
  const g1 = await call(r.agent, `${r.proxy}/p`, { body: over, headers: { 'x-request-id': 'over' } })
  const g2 = await call(r.agent, `${r.proxy}/p`, { body: atLimit, headers: { 'x-request-id': 'at' } })
  assert.equal(g1.status, 200)
  assert.equal(g2.status, 200)
  await waitFor(() => r.shadows[0]!.seen.length === 1, 5000, 'the at-limit request mirrored')
  await shadowsSettled(r.app) // barrier: every mirrored call has ended
  assert.equal(r.shadows[0]!.seen.length, 1)
  assert.equal(r.shadows[0]!.seen[0]!.headers['x-request-id'], 'at')
  assert.equal(r.shadows[0]!.seen[0]!.sha256, sha256(atLimit))
  assert.equal(r.primary.seen.find((s) => s.headers['x-request-id'] === 'over')!.sha256, sha256(over))
  const v = await shadowView(r.app, 'small')
  assert.equal(v.counters.skipped.body_too_large, 1)
  assert.equal(v.state.inflight, 0, 'the semaphore place is not held by the skipped request')
  assert.equal(metricValue(await scrape(r.app), 'penumbra_shadow_skipped_total', { shadow: 'small', reason: 'body_too_large' }), 1)
})

test('chunked body over maxBodyBytes: the primary gets it whole, the shadow is not sent, body_too_large counted', async (t) => {
  const r = await rig({ shadows: ([u]) => [{ name: 'small', url: u, maxBodyBytes: 64 * 1024 }] })
  t.after(() => r.close())
  const parts = Array.from({ length: 8 }, () => randomBytes(32 * 1024))
  const whole = Buffer.concat(parts)
  const got = await call(r.agent, `${r.proxy}/p`, { body: chunks(parts), headers: { 'x-request-id': 'chunked-big' } })
  assert.equal(got.status, 200)
  const p = r.primary.seen[0]!
  assert.equal(p.headers['transfer-encoding'], 'chunked')
  assert.equal(p.sha256, sha256(whole))
  await waitFor(async () => (await shadowView(r.app, 'small')).counters.skipped.body_too_large === 1, 5000, 'body_too_large')
  await shadowsSettled(r.app) // barrier: every mirrored call has ended
  assert.equal(r.shadows[0]!.seen.length, 0)
  const v = await shadowView(r.app, 'small')
  assert.equal(v.counters.mirrored, 0)
  assert.equal(v.state.inflight, 0, 'the semaphore place is given back')
  // A small chunked body afterwards is mirrored again.
  await call(r.agent, `${r.proxy}/p`, { body: chunks([randomBytes(100), randomBytes(100)]) })
  await waitFor(() => r.shadows[0]!.seen.length === 1, 5000, 'the small chunked body mirrored')
})

test('per-shadow body limits: a chunked body too large for one shadow still goes to the other', async (t) => {
  const r = await rig({
    shadowCount: 2,
    shadows: (u) => [{ name: 'tiny', url: u[0], maxBodyBytes: 1024 }, { name: 'roomy', url: u[1], maxBodyBytes: 100 * 1024 }]
  })
  t.after(() => r.close())
  const parts = [randomBytes(5000), randomBytes(5000)]
  await call(r.agent, `${r.proxy}/p`, { body: chunks(parts) })
  await waitFor(() => r.shadows[1]!.seen.length === 1, 5000, 'roomy got it')
  assert.equal(r.shadows[1]!.seen[0]!.sha256, sha256(Buffer.concat(parts)))
  await waitFor(async () => (await shadowView(r.app, 'tiny')).counters.skipped.body_too_large === 1, 5000, 'tiny skipped')
  assert.equal(r.shadows[0]!.seen.length, 0)
  assert.equal((await shadowView(r.app, 'tiny')).state.inflight, 0)
})

test('the client upload is never paused by a shadow: a 12 MB chunked upload completes while the shadow never reads', async (t) => {
  // The shadow accepts connections and never reads a byte: any backpressure from it would stall
  // the upload if the copy were streamed to it.
  const sockets = new Set<Socket>()
  const sink = createServer((s) => { sockets.add(s); s.pause(); s.on('error', () => {}) })
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve))
  const sinkUrl = `http://127.0.0.1:${(sink.address() as { port: number }).port}`
  const primary = await startUpstream(primaryHandler)
  const app = await startPenumbra({
    primary: { url: primary.url },
    shutdown: { timeoutMs: 200 },
    shadows: [{ name: 'stuck', url: sinkUrl, maxBodyBytes: 16 * 1024 * 1024, timeoutMs: 30_000 }]
  })
  const agent = newAgent()
  t.after(async () => {
    await agent.close()
    await app.stop()
    await primary.close()
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => sink.close(() => resolve()))
  })
  const proxy = urls(app).proxy
  // First a request whose shadow copy is stuck on the sink (sent, never read)...
  const first = Array.from({ length: 96 }, () => randomBytes(128 * 1024))
  const g1 = await call(agent, `${proxy}/upload`, { body: chunks(first) })
  assert.equal(g1.status, 200)
  await waitFor(async () => (await shadowView(app, 'stuck')).counters.mirrored === 1, 5000, 'the first copy dispatched')
  // ...then a second big upload must still flow at full speed to the primary.
  const second = Array.from({ length: 96 }, () => randomBytes(128 * 1024))
  const t0 = Date.now()
  const g2 = await call(agent, `${proxy}/upload`, { body: chunks(second) })
  assert.equal(g2.status, 200)
  assert.ok(Date.now() - t0 < 10_000, `upload took ${Date.now() - t0} ms`)
  assert.equal(primary.seen.length, 2)
  assert.equal(primary.seen[0]!.sha256, sha256(Buffer.concat(first)))
  assert.equal(primary.seen[1]!.sha256, sha256(Buffer.concat(second)))
  const v = await shadowView(app, 'stuck')
  assert.equal(v.counters.mirrored, 2)
  assert.equal(v.counters.ok + v.counters.error + v.counters.timeout, 0, 'both shadow copies still pending')
})

test('a POST without a body is mirrored without one', async (t) => {
  const r = await rig({ shadows: ([u]) => [{ name: 's', url: u }] })
  t.after(() => r.close())
  await call(r.agent, `${r.proxy}/p`, { method: 'POST' })
  await waitFor(() => r.shadows[0]!.seen.length === 1, 5000, 'mirrored')
  assert.equal(r.shadows[0]!.seen[0]!.body.length, 0)
})

test('a client that aborts mid-upload: no shadow copy is sent and the semaphore place is given back', async (t) => {
  const r = await rig({ shadows: ([u]) => [{ name: 's', url: u, maxConcurrency: 1 }] })
  t.after(() => r.close())
  const sock = connect(r.app.port, '127.0.0.1')
  await once(sock, 'connect')
  sock.on('error', () => {})
  sock.write('POST /p HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n')
  sock.write(Buffer.alloc(1000, 'a'))
  await waitFor(async () => (await shadowView(r.app, 's')).state.inflight === 1, 2000, 'the request planned for the shadow')
  sock.destroy()
  await waitFor(async () => (await shadowView(r.app, 's')).state.inflight === 0, 5000, 'the place given back')
  assert.equal(r.shadows[0]!.seen.length, 0, 'the partial body was never mirrored')
  await call(r.agent, `${r.proxy}/p`, { body: '{}' })
  await waitFor(() => r.shadows[0]!.seen.length === 1, 5000, 'the next request mirrored (maxConcurrency 1 is free)')
})
