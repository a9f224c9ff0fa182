import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { performance } from 'node:perf_hooks'
import { request } from 'undici'
import type { Penumbra } from '../src/index.js'
import { startPenumbra, testConfig, urls, waitFor } from './helpers/servers.js'
import { parseHead, tcpServer } from './helpers/proxy-util.js'
import { metricValue, scrape } from './helpers/shadow-util.js'
import { ByteLogUpstream, statusCodes, untilClosed } from './helpers/byte-log.js'

// Issue #21: the protocol edges a request-smuggling probe found. Each test is that probe, kept:
// raw sockets against penumbra, upstreams behind a front that logs every byte they receive.

/**
 * A primary and a shadow that log every byte they receive, and penumbra in front mirroring to
 * the shadow (`extra`: more config); all stopped when the test ends.
 */
async function loggedRig (t: { after: (fn: () => unknown) => void }, extra: Record<string, unknown> = {}): Promise<{ primary: ByteLogUpstream, shadow: ByteLogUpstream, app: Penumbra }> {
  const primary = await ByteLogUpstream.start()
  const shadow = await ByteLogUpstream.start()
  t.after(() => primary.close())
  t.after(() => shadow.close())
  const app = await startPenumbra({ primary: { url: primary.url }, shadows: [{ name: 'v2', url: shadow.url }], ...extra })
  t.after(() => app.stop())
  return { primary, shadow, app }
}

const PIPELINE = 'POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello' +
  'GET /b HTTP/1.1\r\nHost: h\r\n\r\n' +
  'GET /c HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n'

test('pipelined: requests read before a malformed one are answered in order, then 400, then close; nothing in flight after', { timeout: 20_000 }, async (t) => {
  const { primary, shadow, app } = await loggedRig(t)
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

test('pipelined: bytes sent after the malformed request, while earlier answers are pending, are never parsed as a request', { timeout: 20_000 }, async (t) => {
  const held: ServerResponse[] = []
  const primary = await ByteLogUpstream.start((_req, res) => { held.push(res) })
  t.after(() => primary.close())
  const app = await startPenumbra({ primary: { url: primary.url } })
  t.after(() => app.stop())
  const s = connect(app.port, '127.0.0.1')
  t.after(() => s.destroy())
  let got = ''
  s.setEncoding('latin1')
  s.on('data', (d: string) => { got += d })
  s.on('error', () => {})
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()))
  // The upstream holds /a and /b, so the refusal of /c is still waiting when /d comes.
  s.write(PIPELINE)
  await waitFor(() => primary.seen.length === 2, 5000, 'the upstream got /a and /b')
  await new Promise<void>((resolve) => s.write('GET /d HTTP/1.1\r\nHost: h\r\n\r\n', () => resolve()))
  for (const r of held) r.end('answer')
  await closed
  assert.deepEqual(statusCodes(got), [200, 200, 400], got)
  assert.deepEqual(primary.seen.map((r) => r.url).sort(), ['/a', '/b'])
  assert.ok(!primary.text.includes('/d'), 'a request after the malformed one is never forwarded')
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

// ---- WebSocket/Upgrade: the same rules as HTTP ----

const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ=='

function upgradeRequest (path = '/ws', extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${WS_KEY}\r\n${extra}\r\n`
}

/** An upstream that switches protocols by hand (echoing what it then receives) and records each handshake. */
async function switchingUpstream (): Promise<ByteLogUpstream & { handshakes: IncomingMessage[] }> {
  const u = await ByteLogUpstream.start() as ByteLogUpstream & { handshakes: IncomingMessage[] }
  u.handshakes = []
  u.inner.server.on('upgrade', (req: IncomingMessage, sock: Duplex) => {
    u.handshakes.push(req)
    sock.on('error', () => {})
    sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\nX-End: kept\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n')
    sock.pipe(sock)
  })
  return u
}

/** Sends raw bytes, resolves with what arrived once `until` holds (or the connection closed). */
function rawUntil (port: number, data: string, until: (got: string) => boolean, timeoutMs = 10_000): Promise<{ got: string, sock: Socket }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1')
    let got = ''
    const t = setTimeout(() => reject(new Error(`timed out; got ${JSON.stringify(got)}`)), timeoutMs)
    sock.setEncoding('latin1')
    sock.on('error', () => {})
    sock.on('data', (d: string) => { got += d; if (until(got)) { clearTimeout(t); resolve({ got, sock }) } })
    sock.on('close', () => { clearTimeout(t); resolve({ got, sock }) })
    sock.write(data)
  })
}

const headEnd = (got: string): boolean => got.includes('\r\n\r\n')

test('upgrade: a handshake that carries a body is refused with 400 and nothing reaches the upstream', { timeout: 20_000 }, async (t) => {
  const primary = await switchingUpstream()
  t.after(() => primary.close())
  const app = await startPenumbra({ primary: { url: primary.url } })
  t.after(() => app.stop())
  const body = 'x'.repeat(40)
  for (const framing of ['Content-Length: 40\r\n', 'Transfer-Encoding: chunked\r\n']) {
    const payload = framing.startsWith('Content') ? body : `28\r\n${body}\r\n0\r\n\r\n`
    const { text, closed } = await untilClosed(app.port, upgradeRequest('/ws', framing) + payload)
    assert.ok(closed)
    assert.deepEqual(statusCodes(text), [400], text)
    assert.match(text, /PENUMBRA_BAD_REQUEST/)
  }
  // A POST upgrade and a non-WebSocket protocol are refused alike.
  const post = await untilClosed(app.port, upgradeRequest('/ws').replace('GET', 'POST'))
  assert.deepEqual(statusCodes(post.text), [400])
  const h2c = await untilClosed(app.port, upgradeRequest('/ws').replace('Upgrade: websocket', 'Upgrade: h2c'))
  assert.deepEqual(statusCodes(h2c.text), [400])
  // Barrier: a good handshake after them is the first thing the upstream ever receives.
  const { got, sock } = await rawUntil(app.port, upgradeRequest('/ok'), headEnd)
  sock.destroy()
  assert.deepEqual(statusCodes(got), [101])
  assert.equal(primary.connections, 1)
  assert.ok(primary.text.startsWith('GET /ok HTTP/1.1\r\n'), primary.text)
  assert.equal(metricValue(await scrape(app), 'penumbra_upgrades_total', { outcome: 'refused' }), 4)
})

test('upgrade: the same header policy as HTTP (hop-by-hop, penumbra\'s own headers, Via, request id, X-Forwarded-*), both ways', { timeout: 20_000 }, async (t) => {
  const primary = await switchingUpstream()
  t.after(() => primary.close())
  const app = await startPenumbra({ primary: { url: primary.url } })
  t.after(() => app.stop())
  const extra = 'Proxy-Authorization: Basic c2VjcmV0\r\nKeep-Alive: timeout=9\r\nX-Penumbra-Shadow: forged\r\nX-Request-Id: req-42\r\nX-Kept: yes\r\n'
  const { got, sock } = await rawUntil(app.port, upgradeRequest('/live?x=1', extra), headEnd)
  t.after(() => sock.destroy())
  const head = parseHead(got)
  assert.equal(head.status, 101)
  const names = head.headers.map(([n]) => n.toLowerCase())
  assert.ok(!names.includes('keep-alive') && !names.includes('x-hop'), `hop-by-hop relayed: ${got}`)
  assert.deepEqual(head.headers.find(([n]) => n === 'X-End'), ['X-End', 'kept'])
  assert.deepEqual(head.headers.find(([n]) => n === 'via'), ['via', '1.1 penumbra'])
  assert.deepEqual(head.headers.find(([n]) => n === 'x-request-id'), ['x-request-id', 'req-42'])
  assert.equal(head.headers.find(([n]) => n.toLowerCase() === 'upgrade')?.[1], 'websocket')
  // The tunnel carries bytes both ways (the upstream echoes).
  const echoed = new Promise<string>((resolve) => { let e = ''; sock.on('data', (d: string) => { e += d; if (e.includes('ping')) resolve(e) }) })
  sock.write('ping')
  assert.equal(await echoed, 'ping')
  const up = primary.handshakes[0]!
  assert.equal(up.url, '/live?x=1')
  assert.equal(up.headers['proxy-authorization'], undefined)
  assert.equal(up.headers['keep-alive'], undefined)
  assert.equal(up.headers['x-penumbra-shadow'], undefined)
  assert.equal(up.headers.via, '1.1 penumbra')
  assert.equal(up.headers['x-request-id'], 'req-42')
  assert.equal(up.headers['x-forwarded-for'], '127.0.0.1')
  assert.equal(up.headers['x-kept'], 'yes')
  assert.equal(up.headers.upgrade, 'websocket')
  assert.equal(up.headers['sec-websocket-key'], WS_KEY)
  assert.ok(!/proxy-authorization|keep-alive|x-penumbra/i.test(primary.text), 'not in the bytes the upstream received either')
})

test('upgrade: loop detection (508), absolute-form (400) and HTTP/2.0 (505) as for HTTP; nothing reaches the upstream', { timeout: 20_000 }, async (t) => {
  const primary = await switchingUpstream()
  t.after(() => primary.close())
  const app = await startPenumbra({ primary: { url: primary.url } })
  t.after(() => app.stop())
  const loop = await untilClosed(app.port, upgradeRequest('/ws', 'Via: 1.1 penumbra\r\n'))
  assert.deepEqual(statusCodes(loop.text), [508], loop.text)
  assert.match(loop.text, /PENUMBRA_LOOP_DETECTED/)
  const abs = await untilClosed(app.port, upgradeRequest('http://evil.example/ws'))
  assert.deepEqual(statusCodes(abs.text), [400], abs.text)
  const v2 = await untilClosed(app.port, upgradeRequest('/ws').replace('HTTP/1.1', 'HTTP/2.0'))
  assert.deepEqual(statusCodes(v2.text), [505], v2.text)
  // Barrier: the next good handshake is the upstream's first connection.
  const { got, sock } = await rawUntil(app.port, upgradeRequest('/ok'), headEnd)
  sock.destroy()
  assert.deepEqual(statusCodes(got), [101])
  assert.equal(primary.connections, 1)
  assert.ok(primary.text.startsWith('GET /ok '), primary.text)
})

test('upgrade: a never-answering upstream gets the head deadline (504, upstream socket closed); proxy.maxUpgrades caps them (503); counted', { timeout: 20_000 }, async (t) => {
  const accepted = new Set<Socket>()
  const silent = await tcpServer((s) => { accepted.add(s); s.resume(); s.on('close', () => accepted.delete(s)) })
  t.after(() => silent.stop())
  const app = await startPenumbra({ primary: { url: silent.url, timeoutMs: 1500 }, proxy: { maxUpgrades: 10 } })
  t.after(() => app.stop())
  const pending = Array.from({ length: 10 }, () => untilClosed(app.port, upgradeRequest()))
  // Barrier: ten handshakes are held by the upstream; the eleventh is over the cap.
  await waitFor(() => accepted.size === 10, 5000, 'ten upstream connections')
  const over = await untilClosed(app.port, upgradeRequest())
  assert.deepEqual(statusCodes(over.text), [503], over.text)
  assert.match(over.text, /PENUMBRA_TOO_MANY_UPGRADES/)
  for (const r of await Promise.all(pending)) {
    assert.ok(r.closed)
    assert.deepEqual(statusCodes(r.text), [504], r.text)
    assert.match(r.text, /PENUMBRA_UPSTREAM_TIMEOUT/)
  }
  await waitFor(() => accepted.size === 0, 5000, 'every upstream socket closed')
  const m = await scrape(app)
  assert.equal(metricValue(m, 'penumbra_upgrades_total', { outcome: 'limit' }), 1)
  assert.equal(metricValue(m, 'penumbra_upgrades_total', { outcome: 'timeout' }), 10)
  assert.equal(metricValue(m, 'penumbra_upstream_errors_total', { upstream: 'primary', reason: 'timeout' }), 10)
  await waitFor(async () => metricValue(await scrape(app), 'penumbra_upgrades_open') === 0, 5000, 'no upgrade open')
  // Below the cap again: a new handshake is let through (and held, until the test ends).
  const again = connect(app.port, '127.0.0.1')
  again.on('error', () => {})
  t.after(() => again.destroy())
  again.write(upgradeRequest())
  await waitFor(() => accepted.size === 1, 5000, 'a new upstream connection')
})

test('upgrade: an upstream that declines (404) is relayed with its body and the connection closes; upgrades go to the active primary', { timeout: 20_000 }, async (t) => {
  const blue = await ByteLogUpstream.start((_req, res) => { res.writeHead(404, { 'content-type': 'text/plain', 'keep-alive': 'timeout=5' }); res.end('no such socket') })
  const green = await switchingUpstream()
  t.after(() => blue.close())
  t.after(() => green.close())
  const app = await startPenumbra({ backends: { blue: { url: blue.url }, green: { url: green.url } }, primary: 'blue' })
  t.after(() => app.stop())
  const declined = await untilClosed(app.port, upgradeRequest('/ws'))
  assert.ok(declined.closed)
  const head = parseHead(declined.text)
  assert.equal(head.status, 404)
  assert.equal(head.body, 'no such socket')
  assert.ok(!head.headers.some(([n]) => n.toLowerCase() === 'keep-alive'))
  assert.deepEqual(head.headers.find(([n]) => n === 'connection'), ['connection', 'close'])
  const sw = await request(`${urls(app).admin}/primary`, { method: 'PUT', body: '{"backend":"green"}', headers: { 'content-type': 'application/json' } })
  assert.equal(sw.statusCode, 200)
  await sw.body.dump()
  const { got, sock } = await rawUntil(app.port, upgradeRequest('/ws'), headEnd)
  sock.destroy()
  assert.deepEqual(statusCodes(got), [101])
  assert.equal(green.handshakes.length, 1)
  assert.equal(blue.seen.length, 1)
  const m = await scrape(app)
  assert.equal(metricValue(m, 'penumbra_upgrades_total', { outcome: 'declined' }), 1)
  assert.equal(metricValue(m, 'penumbra_upgrades_total', { outcome: 'upgraded' }), 1)
})

// ---- request lines ----

test('HTTP/0.9 and HTTP/2.0 request lines get 505 and a closed connection; nothing reaches the upstream; HTTP/1.0 still works', { timeout: 20_000 }, async (t) => {
  const primary = await ByteLogUpstream.start()
  t.after(() => primary.close())
  const app = await startPenumbra({ primary: { url: primary.url } })
  t.after(() => app.stop())
  for (const line of ['GET /x\r\n\r\n', 'GET /x HTTP/2.0\r\nHost: h\r\n\r\n', 'GET /x HTTP/3.1\r\nHost: h\r\n\r\n', 'POST /x HTTP/2.0\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}']) {
    const { text, closed } = await untilClosed(app.port, line)
    assert.ok(closed, JSON.stringify(line))
    assert.deepEqual(statusCodes(text), [505], `${JSON.stringify(line)} → ${text}`)
    // A version llhttp cannot parse at all is refused by the parser (a bodiless 505), the others by penumbra.
    if (!line.includes('3.1')) assert.match(text, /PENUMBRA_HTTP_VERSION_NOT_SUPPORTED/)
  }
  // Barrier: an HTTP/1.0 request is served, and is the first thing the upstream ever received.
  const { text } = await untilClosed(app.port, 'GET /ten HTTP/1.0\r\nHost: h\r\n\r\n')
  assert.deepEqual(statusCodes(text), [200], text)
  assert.equal(primary.connections, 1)
  assert.ok(primary.text.startsWith('GET /ten HTTP/1.1\r\n'), primary.text)
  assert.match(primary.text, /\r\nvia: 1\.0 penumbra\r\n/)
  const m = await scrape(app)
  assert.equal(metricValue(m, 'penumbra_requests_total', { method: 'GET', code: '505' }), 2)
  assert.equal(metricValue(m, 'penumbra_requests_total', { method: 'POST', code: '505' }), 1)
  assert.equal(metricValue(m, 'penumbra_requests_total', { method: 'OTHER', code: '505' }), 1)
})

// ---- slow clients ----

test('slow clients: 50 connections sending one header byte a second are closed with 408 within headersTimeoutMs + 2 s (default 10 s) while normal requests are served', { timeout: 40_000 }, async (t) => {
  const primary = await ByteLogUpstream.start()
  t.after(() => primary.close())
  const app = await startPenumbra({ primary: { url: primary.url } })
  t.after(() => app.stop())
  assert.equal(app.proxy.server.headersTimeout, 10_000)
  const headersTimeoutMs = app.config.listen.headersTimeoutMs
  const slowHead = 'GET /slow HTTP/1.1\r\nHost: h\r\nX-Padding: ' + 'a'.repeat(100)
  const slow = Array.from({ length: 50 }, () => new Promise<{ text: string, ms: number }>((resolve) => {
    const s = connect(app.port, '127.0.0.1')
    const started = Date.now()
    let text = ''
    let i = 0
    const drip = setInterval(() => { if (i < slowHead.length && s.writable) s.write(slowHead[i++]!) }, 1000)
    s.setEncoding('latin1')
    s.on('data', (d: string) => { text += d })
    s.on('error', () => {})
    s.on('close', () => { clearInterval(drip); resolve({ text, ms: Date.now() - started }) })
    t.after(() => { clearInterval(drip); s.destroy() })
    s.write(slowHead[i++]!)
  }))
  let slowDone = false
  const results = Promise.all(slow).then((r) => { slowDone = true; return r })
  // Normal requests, one after another, for as long as the slow connections are open (bounded).
  const latencies: number[] = []
  const until = Date.now() + headersTimeoutMs + 5000
  while (!slowDone && Date.now() < until) {
    const t0 = performance.now()
    const r = await request(`${urls(app).proxy}/normal`, { method: 'POST', body: '{}' })
    assert.equal(r.statusCode, 200)
    await r.body.dump()
    latencies.push(performance.now() - t0)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  for (const r of await results) {
    assert.deepEqual(statusCodes(r.text), [408], r.text)
    assert.ok(r.ms <= headersTimeoutMs + 2000, `closed after ${r.ms} ms`)
  }
  assert.ok(latencies.length >= 10, `${latencies.length} normal requests`)
  t.diagnostic(`normal requests: ${latencies.length}, slowest ${Math.round(Math.max(...latencies))} ms`)
  // Loose: the property is that they are served at all, promptly, not a benchmark.
  assert.ok(Math.max(...latencies) < 1000, `slowest normal request ${Math.max(...latencies)} ms`)
  assert.ok(primary.seen.every((s) => s.url === '/normal'), 'no slow request was forwarded')
})

test('slow clients: an idle keep-alive connection outlives headersTimeoutMs (it is keepAliveTimeoutMs\'s); a silent new connection does not', { timeout: 20_000 }, async (t) => {
  const primary = await ByteLogUpstream.start()
  t.after(() => primary.close())
  const app = await startPenumbra({ primary: { url: primary.url }, listen: { host: '127.0.0.1', port: 0, headersTimeoutMs: 1000 } })
  t.after(() => app.stop())
  const keep = connect(app.port, '127.0.0.1')
  t.after(() => keep.destroy())
  keep.setEncoding('latin1')
  let kept = ''
  keep.on('data', (d: string) => { kept += d })
  keep.write('GET /one HTTP/1.1\r\nHost: h\r\n\r\n')
  await waitFor(() => statusCodes(kept).length === 1, 5000, 'first response')
  // Barrier: a connection that never sends a byte is closed (408) after headersTimeoutMs…
  const silent = await untilClosed(app.port, '')
  assert.ok(silent.closed)
  assert.deepEqual(statusCodes(silent.text), [408], silent.text)
  // …and the idle keep-alive connection, idle for as long, still serves its next request.
  keep.write('GET /two HTTP/1.1\r\nHost: h\r\n\r\n')
  await waitFor(() => statusCodes(kept).length === 2, 5000, 'second response on the kept connection')
  assert.deepEqual(statusCodes(kept), [200, 200])
})

test('listen.maxConnections: connections above it are closed on arrival and counted; below it again, new ones are served', { timeout: 20_000 }, async (t) => {
  const primary = await ByteLogUpstream.start()
  t.after(() => primary.close())
  const app = await startPenumbra({ primary: { url: primary.url }, listen: { host: '127.0.0.1', port: 0, maxConnections: 5 } })
  t.after(() => app.stop())
  const idle: Socket[] = []
  for (let i = 0; i < 5; i++) {
    const s = connect(app.port, '127.0.0.1')
    s.on('error', () => {})
    idle.push(s)
    t.after(() => s.destroy())
  }
  await waitFor(async () => metricValue(await scrape(app), 'penumbra_client_connections') === 5, 5000, 'five open connections')
  const over = await untilClosed(app.port, 'GET /over HTTP/1.1\r\nHost: h\r\n\r\n')
  assert.ok(over.closed)
  assert.equal(over.text, '', 'closed without an answer')
  assert.equal(metricValue(await scrape(app), 'penumbra_client_connections_dropped_total'), 1)
  idle[0]!.destroy()
  await waitFor(async () => metricValue(await scrape(app), 'penumbra_client_connections') === 4, 5000, 'four open connections')
  const { text } = await untilClosed(app.port, 'GET /again HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n')
  assert.deepEqual(statusCodes(text), [200], text)
  assert.deepEqual(primary.seen.map((s) => s.url), ['/again'])
})

// ---- issue #15: request size limits ----

test('listen.maxBodyBytes: a larger Content-Length gets 413 before any upstream is contacted, and the connection closes; at the limit it is forwarded', { timeout: 20_000 }, async (t) => {
  const { primary, shadow, app } = await loggedRig(t, { listen: { host: '127.0.0.1', port: 0, maxBodyBytes: 1000 } })
  const big = await untilClosed(app.port, `POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n${'x'.repeat(1001)}`)
  assert.ok(big.closed)
  const head = parseHead(big.text)
  assert.equal(head.status, 413)
  assert.equal((JSON.parse(head.body) as { error: string }).error, 'PENUMBRA_BODY_TOO_LARGE')
  // Announced but not even sent: refused from the head alone.
  const announced = await untilClosed(app.port, 'POST /huge HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999999\r\n\r\n')
  assert.deepEqual(statusCodes(announced.text), [413])
  // Barrier: a body of exactly the limit is forwarded, and is the first thing either upstream received.
  const ok = await untilClosed(app.port, `POST /fits HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n${'y'.repeat(1000)}`)
  assert.deepEqual(statusCodes(ok.text), [200], ok.text)
  await waitFor(() => shadow.seen.length === 1, 5000, 'the mirrored /fits')
  assert.equal(primary.connections, 1)
  assert.ok(primary.text.startsWith('POST /fits '), primary.text.slice(0, 100))
  assert.ok(shadow.text.startsWith('POST /fits '), shadow.text.slice(0, 100))
  assert.equal(metricValue(await scrape(app), 'penumbra_request_body_too_large_total', { framing: 'content-length' }), 2)
})

test('listen.maxBodyBytes: a chunked body that crosses the limit gets 413 and a closed connection; the upstream request is aborted, no shadow gets it', { timeout: 20_000 }, async (t) => {
  const { primary, shadow, app } = await loggedRig(t, { listen: { host: '127.0.0.1', port: 0, maxBodyBytes: 100_000 } })
  const chunk = 'z'.repeat(40_000)
  const s = connect(app.port, '127.0.0.1')
  t.after(() => s.destroy())
  let got = ''
  s.setEncoding('latin1')
  s.on('data', (d: string) => { got += d })
  s.on('error', () => {})
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()))
  s.write('POST /stream HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n')
  // 40 kB at a time, each after the upstream has seen more bytes: the limit is crossed in flight.
  for (let i = 0; i < 4 && s.writable; i++) {
    const before = primary.chunks.length
    s.write(`${(40_000).toString(16)}\r\n${chunk}\r\n`)
    if (i < 2) await waitFor(() => primary.chunks.length > before, 5000, `chunk ${i} upstream`)
  }
  await closed
  assert.deepEqual(statusCodes(got), [413], got.slice(0, 300))
  assert.match(got, /PENUMBRA_BODY_TOO_LARGE/)
  // The upstream saw the start of the upload but never a complete request; the shadow nothing.
  assert.ok(primary.text.startsWith('POST /stream '))
  await waitFor(() => primary.open === 0, 5000, 'the upstream connection closed (the request aborted)')
  assert.equal(primary.seen.length, 0)
  assert.equal(shadow.seen.length, 0)
  await waitFor(() => app.proxy.inflight === 0, 5000, 'nothing in flight')
  const m = await scrape(app)
  assert.equal(metricValue(m, 'penumbra_request_body_too_large_total', { framing: 'chunked' }), 1)
  assert.equal(metricValue(m, 'penumbra_requests_total', { method: 'POST', code: '413' }), 1)
  assert.equal(metricValue(m, 'penumbra_upstream_errors_total', { upstream: 'primary', reason: 'other' }), 0)
})

test('listen.maxHeaderBytes is node:http\'s header limit (431 beyond); maxHeaderSize stays its old name; maxBodyBytes: null lifts the body limit', { timeout: 20_000 }, async (t) => {
  const primary = await ByteLogUpstream.start()
  t.after(() => primary.close())
  const app = await startPenumbra({ primary: { url: primary.url }, listen: { host: '127.0.0.1', port: 0, maxHeaderBytes: 2048, maxBodyBytes: null } })
  t.after(() => app.stop())
  const big = await untilClosed(app.port, `GET /h HTTP/1.1\r\nHost: h\r\nX-Big: ${'b'.repeat(3000)}\r\n\r\n`)
  assert.deepEqual(statusCodes(big.text), [431], big.text)
  const body = 'q'.repeat(200 * 1024)
  const r = await request(`${urls(app).proxy}/nolimit`, { method: 'POST', body })
  assert.equal(r.statusCode, 200)
  await r.body.dump()
  assert.equal(primary.seen.length, 1)
  assert.equal(testConfig({ primary: { url: primary.url } }).listen.maxBodyBytes, 100 * 1024 * 1024)
  assert.equal(testConfig({ primary: { url: primary.url }, listen: { maxHeaderSize: 4096 } }).listen.maxHeaderBytes, 4096)
  assert.throws(() => testConfig({ primary: { url: primary.url }, listen: { maxHeaderSize: 4096, maxHeaderBytes: 4096 } }), /listen\.maxHeaderSize: is the old name of listen\.maxHeaderBytes/)
  assert.throws(() => testConfig({ primary: { url: primary.url }, listen: { maxBodyBytes: -1 } }), /listen\.maxBodyBytes/)
  assert.throws(() => testConfig({ primary: { url: primary.url }, listen: { maxConnections: 0 } }), /listen\.maxConnections: must be >= 1/)
  assert.throws(() => testConfig({ primary: { url: primary.url }, proxy: { maxUpgrades: 0 } }), /proxy\.maxUpgrades: must be >= 1/)
})

// ---- edge 4 (fixed on main; verified here at the byte level) ----

test('client-sent x-penumbra-shadow/-experiment/-fault (any case, repeated) never reach the primary; the shadow gets one marker, penumbra\'s', { timeout: 20_000 }, async (t) => {
  const { primary, shadow, app } = await loggedRig(t)
  const forged = 'X-Penumbra-Shadow: forged\r\nx-penumbra-shadow: forged2\r\nX-PENUMBRA-EXPERIMENT: ab=b\r\nx-Penumbra-Fault: f\r\nX-Penumbra-Other: kept\r\n'
  // Buffered (Content-Length) and streamed (chunked) bodies take different paths to the upstream.
  const sent = `POST /a HTTP/1.1\r\nHost: h\r\n${forged}Content-Length: 2\r\n\r\n{}` +
    `POST /b HTTP/1.1\r\nHost: h\r\n${forged}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n`
  const { text } = await untilClosed(app.port, sent)
  assert.deepEqual(statusCodes(text), [200, 200], text)
  await waitFor(() => shadow.seen.length === 2, 5000, 'two mirrored requests')
  assert.equal(primary.seen.length, 2)
  assert.ok(!/x-penumbra-(shadow|experiment|fault)/i.test(primary.text), primary.text)
  assert.equal((primary.text.match(/x-penumbra-other: kept/gi) ?? []).length, 2)
  assert.equal((shadow.text.match(/x-penumbra-shadow:/gi) ?? []).length, 2, shadow.text)
  assert.equal((shadow.text.match(/x-penumbra-shadow: v2\r\n/g) ?? []).length, 2)
  assert.ok(!/forged|x-penumbra-(experiment|fault)/i.test(shadow.text), shadow.text)
})
