import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Client, request } from 'undici'
import { waitFor } from './helpers/servers.js'
import { childConfigYaml, freePort, httpServer, probePort, spawnPenumbra, tempDir, writeFile } from './helpers/proxy-util.js'

// Issue #2: SIGTERM drains: in-flight requests complete, new connections are refused, exit 0;
// past shutdown.timeoutMs what is left is cut and the process still exits 0.

test('SIGTERM: the in-flight request completes with 200, new connections are refused, exit 0', { timeout: 20_000 }, async (t) => {
  let seen = 0
  const up = await httpServer((req, res) => {
    seen++
    req.resume()
    const timer = setTimeout(() => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('slow answer') }, 1500)
    res.on('close', () => clearTimeout(timer))
  })
  t.after(() => up.stop())
  const dir = tempDir(t)
  const port = await freePort()
  const adminPort = await freePort()
  const child = await spawnPenumbra(writeFile(dir, 'p.yaml', childConfigYaml({ port, adminPort, primary: up.url, shutdownMs: 10_000 })), { port, adminPort })
  t.after(() => child.kill())
  const client = new Client(`http://127.0.0.1:${port}`)
  t.after(() => client.destroy())

  let finished = false
  const inflight = client.request({ path: '/slow', method: 'POST', body: '{"x":1}', headers: { 'content-type': 'application/json' } })
    .then(async (r) => ({ status: r.statusCode, body: await r.body.text() }))
    .finally(() => { finished = true })
  await waitFor(() => seen === 1, 5000, 'the upstream to get the request')
  child.child.kill('SIGTERM')
  await waitFor(async () => await probePort(port, 500) === 'refused', 3000, 'the listener to close')
  assert.equal(finished, false, 'new connections are refused while the request is still in flight')
  // While draining, the admin says not ready (so load balancers stop sending).
  const rz = await fetch(`http://127.0.0.1:${adminPort}/readyz`).then(async (r) => ({ status: r.status, body: await r.json() as { ready: boolean, reason?: string } }), () => null)
  if (rz !== null) {
    assert.equal(rz.status, 503)
    assert.equal(rz.body.ready, false)
    assert.match(String(rz.body.reason), /shutting down/)
  }
  const r = await inflight
  assert.deepEqual(r, { status: 200, body: 'slow answer' })
  const exit = await child.waitExit(10_000)
  assert.deepEqual(exit, { code: 0, signal: null })
  assert.equal(seen, 1)
})

test('SIGTERM with a hanging request and a small shutdown.timeoutMs: the request is cut, exit 0 within the deadline', { timeout: 20_000 }, async (t) => {
  let seen = 0
  const up = await httpServer((req) => { seen++; req.resume() /* never answers */ })
  t.after(() => up.stop())
  const dir = tempDir(t)
  const port = await freePort()
  const adminPort = await freePort()
  const child = await spawnPenumbra(writeFile(dir, 'p.yaml', childConfigYaml({ port, adminPort, primary: up.url, shutdownMs: 300 })), { port, adminPort })
  t.after(() => child.kill())
  const client = new Client(`http://127.0.0.1:${port}`)
  t.after(() => client.destroy())
  const outcome = client.request({ path: '/hang', method: 'GET' })
    .then(async (r) => { await r.body.text(); return `status ${r.statusCode}` }, (err: Error) => `error ${err.message}`)
  await waitFor(() => seen === 1, 5000, 'the upstream to get the request')
  const started = Date.now()
  child.child.kill('SIGTERM')
  const exit = await child.waitExit(10_000)
  const took = Date.now() - started
  assert.deepEqual(exit, { code: 0, signal: null })
  assert.ok(took < 5000, `exited ${took} ms after SIGTERM (deadline 300 ms)`)
  const o = await outcome
  assert.ok(o.startsWith('error') || /^status 5\d\d$/.test(o), `the hanging request was cut: ${o}`)
})

test('SIGINT drains like SIGTERM (idle process exits 0 promptly)', { timeout: 20_000 }, async (t) => {
  const up = await httpServer((_req, res) => res.end('ok'))
  t.after(() => up.stop())
  const dir = tempDir(t)
  const port = await freePort()
  const adminPort = await freePort()
  const child = await spawnPenumbra(writeFile(dir, 'p.yaml', childConfigYaml({ port, adminPort, primary: up.url })), { port, adminPort })
  t.after(() => child.kill())
  // An idle keep-alive connection must not hold the shutdown until keepAliveTimeout.
  const client = new Client(`http://127.0.0.1:${port}`)
  t.after(() => client.destroy())
  const r = await client.request({ path: '/', method: 'GET' })
  assert.equal(await r.body.text(), 'ok')
  // Barrier: the server has finished the exchange (the connection is idle, not mid-request).
  await waitFor(async () => /^penumbra_inflight_requests 0$/m.test(await (await request(`http://127.0.0.1:${adminPort}/metrics`)).body.text()), 5000, 'the exchange to end')
  const started = Date.now()
  child.child.kill('SIGINT')
  assert.deepEqual(await child.waitExit(10_000), { code: 0, signal: null })
  assert.ok(Date.now() - started < 5000)
})
