import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Client, request } from 'undici'
import { WebSocket, WebSocketServer } from 'ws'
import { startUpstream, startPenumbra, urls, type Upstream } from './helpers/servers.js'
import { parseHead, rawExchange, sleep } from './helpers/proxy-util.js'
import type { Penumbra } from '../src/index.js'

// Issue #2: HEAD/204/304 carry no body, Expect: 100-continue, request smuggling and
// absolute-form targets are refused, WebSocket passthrough.

async function setup (t: { after: (fn: () => Promise<void>) => void }, handler?: Parameters<typeof startUpstream>[0]): Promise<{ up: Upstream, app: Penumbra, proxy: string, port: number }> {
  const up = await startUpstream(handler)
  t.after(() => up.close())
  const app = await startPenumbra({ primary: { url: up.url } })
  t.after(() => app.stop())
  return { up, app, proxy: urls(app).proxy, port: app.port }
}

test('HEAD: no body, the GET\'s Content-Length kept; the connection stays usable', { timeout: 10_000 }, async (t) => {
  const { up, proxy } = await setup(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '12345' })
    if (req.method === 'HEAD') res.end()
    else res.end('x'.repeat(12345))
  })
  const client = new Client(proxy, { pipelining: 1 })
  t.after(() => client.close())
  const h = await client.request({ path: '/head', method: 'HEAD' })
  assert.equal(h.statusCode, 200)
  assert.equal(h.headers['content-length'], '12345')
  assert.equal((await h.body.arrayBuffer()).byteLength, 0)
  const g = await client.request({ path: '/head', method: 'GET' })
  assert.equal(g.statusCode, 200)
  assert.equal((await g.body.text()).length, 12345)
  assert.deepEqual(up.seen.map((s) => s.method), ['HEAD', 'GET'])
})

test('HEAD with raw bytes: exactly one head, no body bytes, then the next response', { timeout: 10_000 }, async (t) => {
  const { port } = await setup(t, (req, res) => {
    res.writeHead(200, { 'content-length': '5' })
    res.end(req.method === 'HEAD' ? undefined : 'hello')
  })
  const raw = await rawExchange(port, 'HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  const first = parseHead(raw)
  assert.equal(first.status, 200)
  assert.deepEqual(first.headers.filter(([n]) => n.toLowerCase() === 'content-length').map(([, v]) => v), ['5'])
  // Right after the HEAD's head comes the GET's status line.
  assert.match(first.body, /^HTTP\/1\.1 200 /)
  assert.ok(first.body.endsWith('\r\n\r\nhello'))
})

test('204 and 304 are relayed without a body; conditional headers pass through', { timeout: 10_000 }, async (t) => {
  const { up, proxy, port } = await setup(t, (req, res) => {
    if (req.url === '/204') { res.writeHead(204, { 'x-kind': 'no-content' }); res.end(); return }
    if (req.headers['if-none-match'] === '"v1"') { res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=60' }); res.end(); return }
    res.writeHead(200, { etag: '"v1"', 'content-length': 4 }); res.end('full')
  })
  const r204 = await request(`${proxy}/204`, { method: 'DELETE' })
  assert.equal(r204.statusCode, 204)
  assert.equal(r204.headers['x-kind'], 'no-content')
  assert.equal(r204.headers['transfer-encoding'], undefined)
  assert.equal((await r204.body.arrayBuffer()).byteLength, 0)
  const r304 = await request(`${proxy}/cond`, { headers: { 'if-none-match': '"v1"' } })
  assert.equal(r304.statusCode, 304)
  assert.equal(r304.headers.etag, '"v1"')
  assert.equal(r304.headers['cache-control'], 'max-age=60')
  assert.equal((await r304.body.arrayBuffer()).byteLength, 0)
  assert.equal(up.seen[1]!.headers['if-none-match'], '"v1"')
  // Raw: after 204 and 304 heads the connection goes on with the next response directly.
  const raw = await rawExchange(port, 'GET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nIf-None-Match: "v1"\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  const statuses = [...raw.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => m[1])
  assert.deepEqual(statuses, ['204', '304', '200'])
  assert.ok(raw.endsWith('\r\n\r\nfull'))
  assert.ok(!/transfer-encoding/i.test(raw.split('HTTP/1.1 200')[0]!), 'no chunked framing on 204/304')
})

test('Expect: 100-continue: 100 Continue first, then the body is forwarded (without Expect)', { timeout: 10_000 }, async (t) => {
  const { up, port } = await setup(t)
  const s = connect({ host: '127.0.0.1', port })
  t.after(() => s.destroy())
  let got = ''
  s.setEncoding('latin1')
  s.on('data', (d: string) => { got += d })
  s.on('error', () => {})
  s.write('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n')
  const until = Date.now() + 5000
  while (!got.includes('\r\n\r\n') && Date.now() < until) await sleep(10)
  assert.match(got, /^HTTP\/1\.1 100 Continue\r\n\r\n/)
  assert.equal(up.seen.length, 0)
  s.write('{"a":[1,2]}')
  while (!got.includes('"ok":true') && Date.now() < until) await sleep(10)
  const final = parseHead(got.slice(got.indexOf('\r\n\r\n') + 4))
  assert.equal(final.status, 200)
  assert.equal(final.body, '{"ok":true,"bytes":11}')
  assert.equal(up.seen[0]!.body.toString(), '{"a":[1,2]}')
  assert.equal(up.seen[0]!.headers.expect, undefined)
})

test('Content-Length + Transfer-Encoding (smuggling) → 400, never reaches the primary', { timeout: 10_000 }, async (t) => {
  const { up, port } = await setup(t)
  const attempts = [
    'POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG',
    'POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n',
    'POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
    'POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc'
  ]
  for (const a of attempts) {
    const raw = await rawExchange(port, a)
    assert.equal(parseHead(raw).status, 400, JSON.stringify(a))
  }
  // Barrier: a valid request after them reaches the primary; it must be the only one there.
  assert.equal(parseHead(await rawExchange(port, 'GET /barrier HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status, 200)
  assert.deepEqual(up.seen.map((x) => x.url), ['/barrier'])
})

test('absolute-form targets → 400, never reach the primary', { timeout: 10_000 }, async (t) => {
  const { up, port } = await setup(t)
  const raw = await rawExchange(port, 'GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n')
  const head = parseHead(raw)
  assert.equal(head.status, 400)
  const body = JSON.parse(head.body) as { error: string }
  assert.equal(body.error, 'PENUMBRA_BAD_REQUEST')
  const raw2 = await rawExchange(port, 'POST https://example.com:8443/v1/predict?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}')
  assert.equal(parseHead(raw2).status, 400)
  // Barrier: a valid request after them reaches the primary; it must be the only one there.
  assert.equal(parseHead(await rawExchange(port, 'GET /barrier HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status, 200)
  assert.deepEqual(up.seen.map((x) => x.url), ['/barrier'])
})

test('WebSocket: upgrade and echo through the proxy (text and binary)', { timeout: 10_000 }, async (t) => {
  const server = createServer((_req, res) => { res.end('http') })
  const wss = new WebSocketServer({ server })
  let upgradePath = ''
  let upgradeHeaders: Record<string, unknown> = {}
  wss.on('connection', (ws, req) => {
    upgradePath = req.url ?? ''
    upgradeHeaders = req.headers
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => { for (const c of wss.clients) c.terminate(); wss.close(); server.close(() => resolve()); server.closeAllConnections() }))
  const app = await startPenumbra({ primary: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } })
  t.after(() => app.stop())

  const ws = new WebSocket(`ws://127.0.0.1:${app.port}/stream/chat?model=a%20b`)
  t.after(() => ws.terminate())
  const messages: Array<{ data: string | Buffer, binary: boolean }> = []
  ws.on('message', (data, isBinary) => messages.push({ data: isBinary ? Buffer.from(data as Buffer) : String(data), binary: isBinary }))
  await new Promise<void>((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  ws.send('hello through penumbra')
  ws.send(Buffer.from([0, 1, 2, 255]), { binary: true })
  const until = Date.now() + 5000
  while (messages.length < 2 && Date.now() < until) await sleep(10)
  assert.deepEqual(messages[0], { data: 'hello through penumbra', binary: false })
  assert.deepEqual(messages[1], { data: Buffer.from([0, 1, 2, 255]), binary: true })
  assert.equal(upgradePath, '/stream/chat?model=a%20b')
  assert.equal(upgradeHeaders['x-forwarded-for'], '127.0.0.1')
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  ws.close(1000, 'bye')
  assert.equal(await closed, 1000)
})

test('WebSocket to a primary that is down: the client gets an error, the proxy survives', { timeout: 10_000 }, async (t) => {
  const s = createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  const app = await startPenumbra({ primary: { url: `http://127.0.0.1:${port}` } })
  t.after(() => app.stop())
  const ws = new WebSocket(`ws://127.0.0.1:${app.port}/x`)
  t.after(() => ws.terminate())
  const outcome = await new Promise<string>((resolve) => {
    ws.once('open', () => resolve('open'))
    ws.once('error', () => resolve('error'))
    ws.once('unexpected-response', () => resolve('unexpected-response'))
  })
  assert.notEqual(outcome, 'open')
  const r = await request(`${urls(app).proxy}/after`)
  await r.body.arrayBuffer()
  assert.equal(r.statusCode, 502)
})

test('app.stop() with an open WebSocket still finishes by shutdown.timeoutMs', {
  timeout: 10_000
}, async (t) => {
  const server = createServer()
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws) => ws.on('message', (d) => ws.send(d)))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => { for (const c of wss.clients) c.terminate(); wss.close(); server.close(() => resolve()); server.closeAllConnections() }))
  const app = await startPenumbra({ primary: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }, shutdown: { timeoutMs: 300 } })
  const ws = new WebSocket(`ws://127.0.0.1:${app.port}/live`)
  t.after(() => ws.terminate())
  t.after(() => app.stop())
  await new Promise<void>((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()))
  const outcome = await Promise.race([app.stop().then(() => 'stopped'), sleep(3000).then(() => 'still stopping after 3 s')])
  assert.equal(outcome, 'stopped')
  await closed
})
