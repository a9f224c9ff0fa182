import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import type { ServerResponse } from 'node:http'
import { startPenumbra, waitFor } from './helpers/servers.js'
import { metricValue, scrape } from './helpers/shadow-util.js'
import { ByteLogUpstream, statusCodes, untilClosed } from './helpers/byte-log.js'

// Issue #21: the protocol edges a request-smuggling probe found. Each test is that probe, kept:
// raw sockets against penumbra, upstreams behind a front that logs every byte they receive.

const PIPELINE = 'POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello' +
  'GET /b HTTP/1.1\r\nHost: h\r\n\r\n' +
  'GET /c HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n'

test('pipelined: requests read before a malformed one are answered in order, then 400, then close; nothing in flight after', { timeout: 20_000 }, async (t) => {
  const primary = await ByteLogUpstream.start()
  const shadow = await ByteLogUpstream.start()
  t.after(() => primary.close())
  t.after(() => shadow.close())
  const app = await startPenumbra({ primary: { url: primary.url }, shadows: [{ name: 'v2', url: shadow.url }] })
  t.after(() => app.stop())
  for (let i = 0; i < 5; i++) {
    const { text, closed } = await untilClosed(app.port, PIPELINE)
    assert.ok(closed, 'penumbra closes the connection after the 400')
    assert.deepEqual(statusCodes(text), [200, 200, 400], text)
    // The answers are the upstream's, for /a then /b (the body names the path).
    assert.ok(text.indexOf('"url":"/a"') < text.indexOf('"url":"/b"') && text.indexOf('"url":"/a"') > 0, text)
  }
  // Both were dispatched at once (on two upstream connections): their order upstream is free.
  assert.deepEqual(primary.seen.map((s) => `${s.method} ${s.url}`).sort(), [...Array(5).fill('GET /b'), ...Array(5).fill('POST /a')])
  assert.ok(!primary.text.includes('/c'), 'the malformed request never reaches the primary')
  await waitFor(() => shadow.seen.length === 5, 5000, 'five mirrored POST /a')
  assert.ok(shadow.seen.every((s) => s.url === '/a'))
  assert.ok(!shadow.text.includes('/c'))
  await waitFor(() => app.proxy.inflight === 0, 5000, 'nothing in flight')
  const m = await scrape(app)
  assert.equal(metricValue(m, 'penumbra_inflight_requests'), 0)
  assert.equal(metricValue(m, 'penumbra_requests_total', { method: 'OTHER', code: '400' }), 5)
})

test('pipelined: a client that closes with responses still queued leaves nothing in flight, the upstream calls are aborted, and stop() does not wait', { timeout: 20_000 }, async (t) => {
  const held = new Set<ServerResponse>()
  let closedEarly = 0
  const primary = await ByteLogUpstream.start((_req, res) => {
    held.add(res)
    res.on('close', () => { held.delete(res); if (!res.writableFinished) closedEarly++ })
  })
  t.after(() => { for (const r of held) r.destroy() })
  t.after(() => primary.close())
  // A drain deadline longer than the test: if stop() waited for the lost exchanges, the test times out.
  const app = await startPenumbra({ primary: { url: primary.url, connections: 64 }, shutdown: { timeoutMs: 60_000 } })
  t.after(() => app.stop())
  const batches = 20
  for (let i = 0; i < batches; i++) {
    const s = connect(app.port, '127.0.0.1')
    s.on('error', () => {})
    s.write(`GET /a${i} HTTP/1.1\r\nHost: h\r\n\r\nGET /b${i} HTTP/1.1\r\nHost: h\r\n\r\n`)
    // Barrier: both requests reached the upstream (the second is queued behind the first here).
    await waitFor(() => primary.seen.length === 2 * (i + 1), 5000, `batch ${i} upstream`)
    s.destroy()
  }
  await waitFor(() => app.proxy.inflight === 0, 5000, 'nothing in flight')
  await waitFor(() => closedEarly === 2 * batches, 5000, 'every upstream call aborted')
  const m = await scrape(app)
  assert.equal(metricValue(m, 'penumbra_inflight_requests'), 0)
  assert.equal(metricValue(m, 'penumbra_requests_total', { method: 'GET', code: '499' }), 2 * batches)
  await app.stop()
})

test('pipelined: a malformed chunk inside a pending request\'s own body gets 400 and a closed connection at once; nothing stays in flight', { timeout: 20_000 }, async (t) => {
  const primary = await ByteLogUpstream.start()
  t.after(() => primary.close())
  const app = await startPenumbra({ primary: { url: primary.url } })
  t.after(() => app.stop())
  const { text, closed } = await untilClosed(app.port, 'POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nZZ\r\n')
  assert.ok(closed)
  assert.deepEqual(statusCodes(text), [400], text)
  await waitFor(() => app.proxy.inflight === 0, 5000, 'nothing in flight')
  assert.equal(metricValue(await scrape(app), 'penumbra_inflight_requests'), 0)
})
