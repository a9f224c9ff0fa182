import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { Readable } from 'node:stream'
import { request, Client } from 'undici'
import { startPenumbra, urls, waitFor } from './helpers/servers.js'
import { closedPortUrl, httpServer, tcpServer, sleep } from './helpers/proxy-util.js'
import { metricValue, scrape } from './helpers/shadow-util.js'

// Issue #2: upstream failures map to 502/504 with a JSON error; a response cut after its head
// destroys the client connection; a client that goes away cancels the upstream request.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

async function errorBody (r: Awaited<ReturnType<typeof request>>): Promise<{ error: string, message: string, requestId: string }> {
  assert.match(String(r.headers['content-type']), /^application\/json/)
  return await r.body.json() as { error: string, message: string, requestId: string }
}

test('primary refusing connections → 502 PENUMBRA_UPSTREAM_UNAVAILABLE with message and requestId', { timeout: 10_000 }, async (t) => {
  const app = await startPenumbra({ primary: { url: await closedPortUrl() } })
  t.after(() => app.stop())
  const r = await request(`${urls(app).proxy}/v1/predict`, { method: 'POST', body: '{"x":1}', headers: { 'x-request-id': 'req-refused-1' } })
  assert.equal(r.statusCode, 502)
  const body = await errorBody(r)
  assert.equal(body.error, 'PENUMBRA_UPSTREAM_UNAVAILABLE')
  assert.equal(typeof body.message, 'string')
  assert.ok(body.message.length > 0)
  assert.equal(body.requestId, 'req-refused-1')
  assert.equal(r.headers['x-request-id'], 'req-refused-1')
  // A generated id is reported the same way in body and header.
  const r2 = await request(`${urls(app).proxy}/v1/predict`)
  const b2 = await errorBody(r2)
  assert.match(b2.requestId, UUID)
  assert.equal(r2.headers['x-request-id'], b2.requestId)
})

test('primary that accepts and resets → 502', { timeout: 10_000 }, async (t) => {
  const up = await tcpServer((sock) => {
    sock.once('data', () => sock.resetAndDestroy())
  })
  t.after(() => up.stop())
  const app = await startPenumbra({ primary: { url: up.url } })
  t.after(() => app.stop())
  const r = await request(`${urls(app).proxy}/reset`, { method: 'POST', body: 'x' })
  assert.equal(r.statusCode, 502)
  const body = await errorBody(r)
  assert.equal(body.error, 'PENUMBRA_UPSTREAM_UNAVAILABLE')
  assert.match(body.requestId, UUID)
})

test('primary that accepts and closes without answering → 502', { timeout: 10_000 }, async (t) => {
  const up = await tcpServer((sock) => { sock.once('data', () => sock.end()) })
  t.after(() => up.stop())
  const app = await startPenumbra({ primary: { url: up.url } })
  t.after(() => app.stop())
  const r = await request(`${urls(app).proxy}/eof`)
  assert.equal(r.statusCode, 502)
  assert.match((await errorBody(r)).error, /^PENUMBRA_UPSTREAM_(UNAVAILABLE|BAD_RESPONSE)$/)
})

test('primary answering garbage → 502 PENUMBRA_UPSTREAM_BAD_RESPONSE', {
  timeout: 10_000
}, async (t) => {
  const up = await tcpServer((sock) => { sock.once('data', () => sock.end('SPDY/9 banana\r\n\r\n')) })
  t.after(() => up.stop())
  const app = await startPenumbra({ primary: { url: up.url } })
  t.after(() => app.stop())
  const r = await request(`${urls(app).proxy}/garbage`)
  assert.equal(r.statusCode, 502)
  assert.equal((await errorBody(r)).error, 'PENUMBRA_UPSTREAM_BAD_RESPONSE')
})

// Empty and buffered request bodies use the handler's own deadline; bodies penumbra streams
// (chunked here) keep undici's timers, which follow the upload. Both must end in the same 504.
for (const body of ['none', 'streamed'] as const) {
  test(`primary too slow (primary.timeoutMs), request body ${body} → 504 PENUMBRA_UPSTREAM_TIMEOUT`, { timeout: 10_000 }, async (t) => {
    const up = await httpServer((req, res) => { req.resume(); const h = setTimeout(() => res.end('late'), 5000); res.on('close', () => clearTimeout(h)) })
    t.after(() => up.stop())
    const app = await startPenumbra({ primary: { url: up.url, timeoutMs: 150 } })
    t.after(() => app.stop())
    const started = Date.now()
    const r = await request(`${urls(app).proxy}/slow`, {
      headers: { 'x-request-id': 'slow-1' },
      ...(body === 'streamed' ? { method: 'POST' as const, body: Readable.from([Buffer.from('{"x":'), Buffer.from('1}')]) } : {})
    })
    assert.equal(r.statusCode, 504)
    const err = await errorBody(r)
    assert.equal(err.error, 'PENUMBRA_UPSTREAM_TIMEOUT')
    assert.equal(err.requestId, 'slow-1')
    assert.ok(Date.now() - started < 4000, 'answered well before the upstream would have')
  })
}

test('primary stalling mid-body longer than primary.timeoutMs → client connection destroyed, counted as a timeout', { timeout: 10_000 }, async (t) => {
  const up = await tcpServer((sock) => {
    sock.once('data', () => sock.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(1000)}`))
  })
  t.after(() => up.stop())
  const app = await startPenumbra({ primary: { url: up.url, timeoutMs: 200 } })
  t.after(() => app.stop())
  const client = new Client(urls(app).proxy)
  t.after(() => client.destroy())
  const started = Date.now()
  const r = await client.request({ path: '/stall', method: 'GET' })
  assert.equal(r.statusCode, 200)
  await assert.rejects(r.body.text(), 'the body must not end cleanly')
  assert.ok(Date.now() - started < 4000, `cut after ${Date.now() - started} ms`)
  await waitFor(async () => metricValue(await scrape(app), 'penumbra_upstream_errors_total', { upstream: 'primary', reason: 'timeout' }) === 1, 3000, 'the timeout counted')
})

test('a client reading slowly (backpressure) for longer than primary.timeoutMs still gets the whole body', { timeout: 20_000 }, async (t) => {
  // undici does not count a body gap while the reader holds the stream back; neither does
  // penumbra's own deadline. 32 MB outgrows the socket buffers, so penumbra has to pause.
  const total = 32 * 1024 * 1024
  const up = await httpServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total })
    const chunk = Buffer.alloc(64 * 1024, 7)
    let sent = 0
    const pump = (): void => {
      while (sent < total) { sent += chunk.length; if (!res.write(chunk)) { res.once('drain', pump); return } }
      res.end()
    }
    pump()
  })
  t.after(() => up.stop())
  const app = await startPenumbra({ primary: { url: up.url, timeoutMs: 200 } })
  t.after(() => app.stop())
  const client = new Client(urls(app).proxy)
  t.after(() => client.destroy())
  const r = await client.request({ path: '/big', method: 'GET' })
  assert.equal(r.statusCode, 200)
  let got = 0
  let waited = false
  for await (const c of r.body) {
    got += (c as Buffer).length
    if (!waited) { waited = true; await sleep(800) } // four deadlines' worth without reading
  }
  assert.equal(got, total)
  assert.equal(metricValue(await scrape(app), 'penumbra_upstream_errors_total', { upstream: 'primary', reason: 'timeout' }), 0)
})

for (const framing of ['content-length', 'chunked'] as const) {
  test(`primary dying after the head and part of the body (${framing}) → client connection destroyed, never a complete-looking body`, { timeout: 10_000 }, async (t) => {
    const up = await tcpServer((sock) => {
      sock.once('data', () => {
        const part = 'x'.repeat(1000)
        if (framing === 'content-length') sock.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n${part}`)
        else sock.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n${(1000).toString(16)}\r\n${part}\r\n`)
        setTimeout(() => sock.destroy(), 100)
      })
    })
    t.after(() => up.stop())
    const app = await startPenumbra({ primary: { url: up.url } })
    t.after(() => app.stop())
    const client = new Client(urls(app).proxy)
    t.after(() => client.destroy())
    const r = await client.request({ path: '/cut', method: 'GET' })
    assert.equal(r.statusCode, 200)
    await assert.rejects(r.body.text(), 'the body must not end cleanly')

    // With raw bytes: the proxy must close the connection without a terminating chunk.
    const raw = await new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: app.port })
      let got = ''
      s.setEncoding('latin1')
      s.on('data', (d: string) => { got += d })
      const timer = setTimeout(() => s.destroy(), 5000)
      s.on('close', () => { clearTimeout(timer); resolve(got) })
      s.on('error', () => {})
      s.write('GET /cut HTTP/1.1\r\nHost: x\r\n\r\n')
    })
    assert.match(raw, /^HTTP\/1\.1 200/)
    const [head, body = ''] = raw.split('\r\n\r\n')
    if (/transfer-encoding: chunked/i.test(head!)) assert.ok(!body.endsWith('0\r\n\r\n'), 'no last-chunk after a cut upstream')
    else {
      const cl = /content-length: (\d+)/i.exec(head!)
      assert.ok(cl === null || body.length < Number(cl[1]), 'fewer bytes than announced')
    }
  })
}

test('client aborting mid-upload → the primary sees its request aborted', { timeout: 10_000 }, async (t) => {
  let upstreamReq: { started: boolean, ended: boolean, closed: boolean, complete: boolean } = { started: false, ended: false, closed: false, complete: false }
  const up = await httpServer((req, res) => {
    upstreamReq.started = true
    req.on('data', () => {})
    req.on('end', () => { upstreamReq.ended = true; res.end('ok') })
    req.on('error', () => {})
    req.on('close', () => { upstreamReq.closed = true; upstreamReq.complete = req.complete })
  })
  t.after(() => up.stop())
  const app = await startPenumbra({ primary: { url: up.url } })
  t.after(() => app.stop())
  const s = connect({ host: '127.0.0.1', port: app.port })
  s.on('error', () => {})
  t.after(() => s.destroy())
  s.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n')
  s.write(Buffer.alloc(64 * 1024, 1))
  await waitFor(() => upstreamReq.started, 5000, 'the upstream to see the request')
  s.destroy()
  await waitFor(() => upstreamReq.closed, 5000, 'the upstream request to be closed')
  assert.equal(upstreamReq.ended, false)
  assert.equal(upstreamReq.complete, false)
  upstreamReq = { started: false, ended: false, closed: false, complete: false }
})

test('client going away while the primary computes → the upstream connection is closed', { timeout: 10_000 }, async (t) => {
  let gotRequest = false
  let upstreamClosed = false
  const up = await httpServer((req, res) => {
    gotRequest = true
    req.resume()
    res.on('close', () => { upstreamClosed = true })
    // Never answers on its own.
  })
  t.after(() => up.stop())
  const app = await startPenumbra({ primary: { url: up.url } })
  t.after(() => app.stop())
  const s = connect({ host: '127.0.0.1', port: app.port })
  s.on('error', () => {})
  s.write('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}')
  await waitFor(() => gotRequest, 5000, 'the upstream to see the request')
  s.destroy()
  await waitFor(() => upstreamClosed, 5000, 'the upstream response to be closed')
  // The proxy is fine afterwards.
  await waitFor(() => app.proxy.inflight === 0, 5000, 'in-flight back to 0')
})

test('the proxy keeps serving after upstream failures (no crash, no leaked in-flight)', { timeout: 10_000 }, async (t) => {
  let mode: 'reset' | 'ok' = 'reset'
  const up = await tcpServer((sock) => {
    sock.on('data', () => {
      if (mode === 'reset') sock.resetAndDestroy()
      else sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    })
  })
  t.after(() => up.stop())
  const app = await startPenumbra({ primary: { url: up.url } })
  t.after(() => app.stop())
  for (let i = 0; i < 5; i++) {
    const r = await request(`${urls(app).proxy}/r${i}`)
    await r.body.arrayBuffer()
    assert.equal(r.statusCode, 502)
  }
  mode = 'ok'
  const r = await request(`${urls(app).proxy}/fine`)
  assert.equal(r.statusCode, 200)
  assert.equal(await r.body.text(), 'ok')
  assert.equal(app.proxy.inflight, 0)
})
