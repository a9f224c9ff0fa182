import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { startUpstream, startPenumbra, urls, type Upstream } from './helpers/servers.js'
import { parseHead, rawExchange, tcpServer } from './helpers/proxy-util.js'
import type { Penumbra } from '../src/index.js'

// Issue #2: forwarding fidelity, hop-by-hop stripping, X-Forwarded-*, Via, Host, X-Request-Id.

async function setup (t: { after: (fn: () => Promise<void>) => void }, partial: Record<string, unknown> = {}, handler?: Parameters<typeof startUpstream>[0]): Promise<{ up: Upstream, app: Penumbra, proxy: string, port: number }> {
  const up = await startUpstream(handler)
  t.after(() => up.close())
  const app = await startPenumbra({ ...partial, primary: { url: up.url, ...(partial.primary as object | undefined) } })
  t.after(() => app.stop())
  return { up, app, proxy: urls(app).proxy, port: app.port }
}

/** Values of a raw header list (case-insensitive name), in order. */
function rawValues (raw: string[], name: string): string[] {
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name.toLowerCase()) out.push(raw[i + 1]!)
  return out
}

test('method, path and query (with encoded characters) reach the primary exactly', { timeout: 10_000 }, async (t) => {
  const { up, proxy, port } = await setup(t)
  const paths = [
    '/v1/models/iris:predict',
    '/a%2Fb/c%20d/%E2%9C%93?q=%E2%9C%93&x=1&x=2&empty=&plus=a+b&pct=%25&slash=%2F',
    '/search?q=a%26b%3Dc&raw=%7Bjson%7D&sq=[1,2]&at=@&c=:',
    '/trailing/?',
    '//double//slash/../not-normalised/./x'
  ]
  for (const p of paths) {
    // Raw bytes, so the client library cannot normalise the target.
    const raw = await rawExchange(port, `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
    assert.equal(parseHead(raw).status, 200, p)
  }
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    const r = await request(`${proxy}/m?x=${method}`, { method, body: method === 'OPTIONS' ? undefined : `body-${method}` })
    await r.body.arrayBuffer()
    assert.equal(r.statusCode, 200)
  }
  assert.deepEqual(up.seen.slice(0, paths.length).map((s) => s.url), paths)
  assert.deepEqual(up.seen.slice(paths.length).map((s) => [s.method, s.url, s.body.toString()]), [
    ['POST', '/m?x=POST', 'body-POST'],
    ['PUT', '/m?x=PUT', 'body-PUT'],
    ['PATCH', '/m?x=PATCH', 'body-PATCH'],
    ['DELETE', '/m?x=DELETE', 'body-DELETE'],
    ['OPTIONS', '/m?x=OPTIONS', '']
  ])
})

test('a 1 MB random body arrives byte-exact (sha256), fixed length and chunked', { timeout: 10_000 }, async (t) => {
  const { up, proxy } = await setup(t)
  const body = randomBytes(1024 * 1024)
  const sha = createHash('sha256').update(body).digest('hex')
  const r1 = await request(`${proxy}/upload`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
  assert.equal(r1.statusCode, 200)
  assert.deepEqual(await r1.body.json(), { ok: true, bytes: body.length })
  // Without a length: the client sends chunked, the proxy re-frames it.
  async function * chunks (): AsyncGenerator<Buffer> { for (let i = 0; i < body.length; i += 100_000) yield body.subarray(i, i + 100_000) }
  const r2 = await request(`${proxy}/upload`, { method: 'POST', body: Readable.from(chunks()) })
  assert.equal(r2.statusCode, 200)
  assert.deepEqual(await r2.body.json(), { ok: true, bytes: body.length })
  assert.equal(up.seen.length, 2)
  assert.equal(up.seen[0]!.sha256, sha)
  assert.equal(up.seen[1]!.sha256, sha)
  assert.equal(up.seen[0]!.headers['content-length'], String(body.length))
})

test('end-to-end request headers are kept exactly: name case, order, duplicates', { timeout: 10_000 }, async (t) => {
  const { up, port } = await setup(t)
  const raw = await rawExchange(port, [
    'POST /h HTTP/1.1',
    'Host: client.example',
    'X-Custom-Thing: Value With  Spaces',
    'x-lower: lower',
    'X-Dup: first',
    'Content-Type: application/json',
    'X-Dup: second',
    'Accept: text/plain',
    'Accept: application/json',
    'Cookie: a=1',
    'Authorization: Bearer abc',
    'Content-Length: 2',
    'Connection: close',
    '', '{}'
  ].join('\r\n'))
  assert.equal(parseHead(raw).status, 200)
  const seen = up.seen[0]!
  assert.equal(seen.body.toString(), '{}')
  const names = []
  for (let i = 0; i < seen.rawHeaders.length; i += 2) names.push(seen.rawHeaders[i])
  // Case kept as the client sent it.
  for (const n of ['X-Custom-Thing', 'x-lower', 'X-Dup', 'Content-Type', 'Accept', 'Cookie', 'Authorization']) assert.ok(names.includes(n), `${n} in ${names.join(',')}`)
  assert.deepEqual(rawValues(seen.rawHeaders, 'x-custom-thing'), ['Value With  Spaces'])
  assert.deepEqual(rawValues(seen.rawHeaders, 'x-dup'), ['first', 'second'])
  assert.deepEqual(rawValues(seen.rawHeaders, 'accept'), ['text/plain', 'application/json'])
  assert.deepEqual(rawValues(seen.rawHeaders, 'authorization'), ['Bearer abc'])
  assert.deepEqual(rawValues(seen.rawHeaders, 'cookie'), ['a=1'])
  // Relative order of end-to-end headers is kept.
  const e2e = names.filter((n) => ['X-Custom-Thing', 'x-lower', 'X-Dup', 'Content-Type', 'Accept'].includes(n!))
  assert.deepEqual(e2e, ['X-Custom-Thing', 'x-lower', 'X-Dup', 'Content-Type', 'X-Dup', 'Accept', 'Accept'])
})

test('response status, reason, headers (incl. duplicates) and body come back intact', { timeout: 10_000 }, async (t) => {
  const body = randomBytes(256 * 1024)
  const { port, proxy } = await setup(t, {}, (_req, res) => {
    res.statusMessage = 'Created Just Now'
    res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; HttpOnly'])
    res.setHeader('X-Resp-Thing', 'Mixed Case Value')
    res.setHeader('Content-Type', 'application/octet-stream')
    res.setHeader('Content-Length', body.length)
    res.setHeader('ETag', '"v1"')
    res.writeHead(201)
    res.end(body)
  })
  const r = await request(`${proxy}/resp`)
  const got = Buffer.from(await r.body.arrayBuffer())
  assert.equal(r.statusCode, 201)
  assert.equal(r.headers['x-resp-thing'], 'Mixed Case Value')
  assert.deepEqual(r.headers['set-cookie'], ['a=1; Path=/', 'b=2; HttpOnly'])
  assert.equal(r.headers['content-type'], 'application/octet-stream')
  assert.equal(r.headers['content-length'], String(body.length))
  assert.equal(r.headers.etag, '"v1"')
  assert.ok(got.equals(body))
  const head = parseHead(await rawExchange(port, 'GET /resp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))
  assert.equal(head.status, 201)
  assert.equal(head.reason, 'Created Just Now')
})

test('request hop-by-hop headers (and those listed in Connection) never reach the primary', { timeout: 10_000 }, async (t) => {
  const { up, port } = await setup(t)
  const raw = await rawExchange(port, [
    'POST /hop HTTP/1.1',
    'Host: client.example',
    'Connection: keep-alive, X-Secret-Hop, x-other-hop',
    'X-Secret-Hop: 1',
    'X-Other-Hop: 2',
    'Keep-Alive: timeout=5, max=7',
    'Proxy-Connection: keep-alive',
    'TE: trailers',
    'Trailer: X-Checksum',
    'Upgrade: h2c',
    'Proxy-Authorization: Basic dXNlcjpwYXNz',
    'X-Kept: yes',
    'Content-Length: 5',
    '', 'hello'
  ].join('\r\n'), { until: (s) => s.includes('"ok":true') })
  assert.equal(parseHead(raw).status, 200)
  const seen = up.seen[0]!
  assert.equal(seen.body.toString(), 'hello')
  assert.equal(seen.headers['x-kept'], 'yes')
  for (const h of ['x-secret-hop', 'x-other-hop', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'transfer-encoding']) {
    assert.equal(seen.headers[h], undefined, `${h} must not reach the primary`)
  }
  // The proxy's own Connection (if any) does not carry the client's list.
  assert.ok(!/secret|other/i.test(String(seen.headers.connection ?? '')))
  assert.ok(!/max=7/.test(JSON.stringify(seen.rawHeaders)))
})

test('response hop-by-hop headers (and those listed in Connection) never reach the client', { timeout: 10_000 }, async (t) => {
  const up = await tcpServer((sock) => {
    let buf = ''
    sock.setEncoding('latin1')
    sock.on('data', (d: string) => {
      buf += d
      if (!buf.includes('\r\n\r\n')) return
      buf = ''
      sock.write([
        'HTTP/1.1 200 OK',
        'Connection: keep-alive, X-Resp-Hop',
        'X-Resp-Hop: secret',
        'Keep-Alive: timeout=5, max=7',
        'Proxy-Connection: keep-alive',
        'TE: trailers',
        'Trailer: X-Checksum',
        'Upgrade: foo/1',
        'Proxy-Authenticate: Basic realm="upstream"',
        'X-End-To-End: kept',
        'Content-Type: text/plain',
        'Transfer-Encoding: chunked',
        '', '5', 'hello', '6', ' world', '0', 'X-Checksum: abc', '', ''
      ].join('\r\n'))
    })
  })
  t.after(() => up.stop())
  const app = await startPenumbra({ primary: { url: up.url } })
  t.after(() => app.stop())
  const r = await request(`${urls(app).proxy}/x`)
  assert.equal(r.statusCode, 200)
  assert.equal(await r.body.text(), 'hello world')
  assert.equal(r.headers['x-end-to-end'], 'kept')
  for (const h of ['x-resp-hop', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authenticate']) {
    assert.equal(r.headers[h], undefined, `${h} must not reach the client`)
  }
  // Node may add its own Connection/Keep-Alive/Transfer-Encoding for this hop; never the upstream's.
  assert.ok(!/x-resp-hop/i.test(String(r.headers.connection ?? '')))
  assert.ok(!/max=7/.test(String(r.headers['keep-alive'] ?? '')), `keep-alive: ${String(r.headers['keep-alive'])}`)
  assert.deepEqual(r.trailers, {})
})

test('X-Forwarded-For is appended to, X-Forwarded-Proto/Host are set, Via added (and appended), Host is the upstream\'s', { timeout: 10_000 }, async (t) => {
  const { up, proxy, port } = await setup(t)
  let r = await request(`${proxy}/xf`, { headers: { host: 'public.example:8443', 'x-forwarded-for': '203.0.113.7, 198.51.100.2' } })
  await r.body.arrayBuffer()
  assert.equal(r.statusCode, 200)
  assert.match(String(r.headers.via), /(^|, )1\.1 penumbra$/, 'Via on the response too (RFC 9110 §7.6.3 MAY)')
  let seen = up.seen[0]!
  assert.equal(seen.headers['x-forwarded-for'], '203.0.113.7, 198.51.100.2, 127.0.0.1')
  assert.equal(seen.headers['x-forwarded-proto'], 'http')
  assert.equal(seen.headers['x-forwarded-host'], 'public.example:8443')
  assert.equal(seen.headers.via, '1.1 penumbra')
  assert.equal(seen.headers.host, `127.0.0.1:${up.port}`)
  assert.equal(rawValues(seen.rawHeaders, 'host').length, 1)

  // No prior X-Forwarded-For: just the peer. An existing Via: ours is appended.
  r = await request(`${proxy}/xf2`, { headers: { via: '1.0 fred, 1.1 edge' } })
  await r.body.arrayBuffer()
  seen = up.seen[1]!
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
  assert.equal(seen.headers.via, '1.0 fred, 1.1 edge, 1.1 penumbra')
  assert.equal(seen.headers['x-forwarded-host'], `127.0.0.1:${port}`)

  // A client cannot spoof Proto/Host: the proxy's values replace them, once.
  r = await request(`${proxy}/xf3`, { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' } })
  await r.body.arrayBuffer()
  seen = up.seen[2]!
  assert.deepEqual(rawValues(seen.rawHeaders, 'x-forwarded-proto'), ['http'])
  assert.deepEqual(rawValues(seen.rawHeaders, 'x-forwarded-host'), [`127.0.0.1:${port}`])

  // HTTP/1.0 client: Via says 1.0.
  const raw = await rawExchange(port, 'GET /v10 HTTP/1.0\r\nHost: h10.example\r\n\r\n')
  assert.equal(parseHead(raw).status, 200)
  assert.equal(up.seen[3]!.headers.via, '1.0 penumbra')
})

test('primary.preserveHost: true forwards the client\'s Host', { timeout: 10_000 }, async (t) => {
  const { up, proxy } = await setup(t, { primary: { preserveHost: true } })
  const r = await request(`${proxy}/ph`, { headers: { host: 'public.example:8443' } })
  await r.body.arrayBuffer()
  assert.equal(r.statusCode, 200)
  assert.equal(up.seen[0]!.headers.host, 'public.example:8443')
  assert.equal(rawValues(up.seen[0]!.rawHeaders, 'host').length, 1)
})

test('proxy.xForwarded: false sends no X-Forwarded-*; proxy.via sets the pseudonym', { timeout: 10_000 }, async (t) => {
  const { up, proxy } = await setup(t, { proxy: { xForwarded: false, via: 'gw-7' } })
  const r = await request(`${proxy}/nx`)
  await r.body.arrayBuffer()
  const h = up.seen[0]!.headers
  assert.equal(h['x-forwarded-for'], undefined)
  assert.equal(h['x-forwarded-proto'], undefined)
  assert.equal(h['x-forwarded-host'], undefined)
  assert.equal(h.via, '1.1 gw-7')
})

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

test('X-Request-Id: a sane one is kept, an insane one replaced, a missing one generated; same value up and down', { timeout: 10_000 }, async (t) => {
  const { up, proxy } = await setup(t, {}, (req, res) => {
    // The upstream tries to set its own: the client must see the proxy's (same as sent upstream).
    res.writeHead(200, { 'x-request-id': 'from-upstream', 'content-length': 2 })
    res.end('ok')
    void req
  })
  const cases: Array<[string | undefined, 'kept' | 'new']> = [
    ['abc-123', 'kept'],
    ['0f8fad5b-d9cb-469f-a165-70867728950e', 'kept'],
    ['trace:span/1.2@svc+x=y_z', 'kept'],
    ['x'.repeat(128), 'kept'],
    ['x'.repeat(129), 'new'],
    ['has space', 'new'],
    ['<script>alert(1)</script>', 'new'],
    ['semi;colon', 'new'],
    ['caf\u00e9', 'new'],
    [undefined, 'new']
  ]
  for (const [i, [sent, expect]] of cases.entries()) {
    const headers: Record<string, string> = {}
    if (sent !== undefined) headers['x-request-id'] = sent
    const r = await request(`${proxy}/rid`, { headers })
    await r.body.arrayBuffer()
    const back = r.headers['x-request-id']
    const seen = up.seen[i]!
    assert.deepEqual(rawValues(seen.rawHeaders, 'x-request-id').length, 1, `one id upstream for ${sent}`)
    assert.equal(seen.headers['x-request-id'], back, `same id up and down for ${sent}`)
    if (expect === 'kept') assert.equal(back, sent)
    else {
      assert.notEqual(back, sent)
      assert.match(String(back), UUID)
    }
  }
  // Two generated ids differ.
  assert.notEqual(up.seen[8]!.headers['x-request-id'], up.seen[9]!.headers['x-request-id'])
})

test('X-Request-Id sent twice by the client is replaced by one id', { timeout: 10_000 }, async (t) => {
  const { up, port } = await setup(t)
  const raw = await rawExchange(port, 'GET /rid2 HTTP/1.1\r\nHost: x\r\nX-Request-Id: aaa\r\nX-Request-Id: bbb\r\nConnection: close\r\n\r\n')
  const head = parseHead(raw)
  const back = head.headers.filter(([n]) => n.toLowerCase() === 'x-request-id').map(([, v]) => v)
  assert.equal(back.length, 1)
  assert.deepEqual(rawValues(up.seen[0]!.rawHeaders, 'x-request-id'), back)
})

test('proxy.requestIdHeader renames the request-id header', { timeout: 10_000 }, async (t) => {
  const { up, proxy } = await setup(t, { proxy: { requestIdHeader: 'X-Correlation-Id' } })
  const r = await request(`${proxy}/cid`, { headers: { 'x-correlation-id': 'corr-1' } })
  await r.body.arrayBuffer()
  assert.equal(r.headers['x-correlation-id'], 'corr-1')
  assert.equal(up.seen[0]!.headers['x-correlation-id'], 'corr-1')
})

test('a request whose Via already names this proxy is a loop → 508 PENUMBRA_LOOP_DETECTED, not forwarded', {
  timeout: 10_000
}, async (t) => {
  const { up, proxy } = await setup(t)
  const r = await request(`${proxy}/loop`, { headers: { via: '1.1 edge, 1.1 penumbra' } })
  assert.equal(r.statusCode, 508)
  assert.equal((await r.body.json() as { error: string }).error, 'PENUMBRA_LOOP_DETECTED')
  assert.equal(up.seen.length, 0)
})
