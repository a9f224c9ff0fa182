import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { childConfigYaml, freePort, httpServer, spawnPenumbra, tempDir, writeFile, type PenumbraChild } from './helpers/proxy-util.js'
import { waitFor } from './helpers/servers.js'

// Issue #2: one JSON access-log line per request on stdout; log.access: false turns it off;
// credentials never reach the log.

const SECRET = 'sekrit-bearer-value-8f3a9c'

function accessLines (child: PenumbraChild): Array<Record<string, unknown>> {
  return child.jsonLines().filter((l) => l.msg === 'access')
}

async function start (t: { after: (fn: () => unknown) => void }, log: string): Promise<{ child: PenumbraChild, port: number }> {
  const up = await httpServer((req, res) => {
    req.resume()
    req.on('end', () => {
      if (req.url === '/missing') { res.writeHead(404, { 'content-type': 'application/json' }); res.end('{"error":"nope"}'); return }
      res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"ok":true}')
    })
  })
  t.after(() => up.stop())
  const dir = tempDir(t)
  const port = await freePort()
  const adminPort = await freePort()
  const child = await spawnPenumbra(writeFile(dir, 'p.yaml', childConfigYaml({ port, adminPort, primary: up.url, log })), { port, adminPort })
  t.after(() => child.kill())
  return { child, port }
}

test('access log: one JSON line per request with method, path, status, durationMs, requestId, upstream; no credentials', { timeout: 20_000 }, async (t) => {
  const { child, port } = await start(t, '{ level: info, access: true }')
  const base = `http://127.0.0.1:${port}`
  const ids: string[] = []
  let r = await request(`${base}/v1/models/iris:predict?x=1`, { method: 'POST', body: '{"instances":[1]}', headers: { authorization: `Bearer ${SECRET}`, 'x-request-id': 'acc-1', 'proxy-authorization': `Basic ${SECRET}`, cookie: `session=${SECRET}` } })
  await r.body.arrayBuffer(); ids.push(String(r.headers['x-request-id']))
  r = await request(`${base}/missing`, { headers: { authorization: SECRET } })
  await r.body.arrayBuffer(); ids.push(String(r.headers['x-request-id']))
  r = await request(`${base}/third`)
  await r.body.arrayBuffer(); ids.push(String(r.headers['x-request-id']))
  child.child.kill('SIGTERM')
  assert.equal((await child.waitExit(10_000)).code, 0)

  const lines = accessLines(child)
  assert.equal(lines.length, 3, child.stdout)
  const [a, b, c] = lines
  assert.equal(a!.method, 'POST')
  assert.equal(a!.path, '/v1/models/iris:predict', 'the query (it may hold secrets) is not logged')
  assert.equal(a!.status, 200)
  assert.equal(a!.requestId, 'acc-1')
  assert.equal(a!.upstream, 'primary')
  assert.equal(typeof a!.durationMs, 'number')
  assert.ok((a!.durationMs as number) >= 0)
  assert.equal(b!.status, 404)
  assert.equal(b!.path, '/missing')
  assert.equal(b!.method, 'GET')
  assert.deepEqual(lines.map((l) => l.requestId), ids)
  assert.equal(c!.path, '/third')
  // Every stdout line is JSON (no stray text), and no secret anywhere.
  for (const line of child.stdout.split('\n').filter((l) => l.trim() !== '')) assert.doesNotThrow(() => JSON.parse(line), line)
  assert.ok(!child.stdout.includes(SECRET), 'credentials must never appear in stdout')
  assert.ok(!child.stderr.includes(SECRET), 'credentials must never appear in stderr')
})

test('access log: a line shows up while the process runs (not only at exit)', {
  timeout: 20_000
}, async (t) => {
  const { child, port } = await start(t, '{ level: info, access: true }')
  const r = await request(`http://127.0.0.1:${port}/one`)
  await r.body.arrayBuffer()
  await waitFor(() => accessLines(child).length === 1, 3000, 'the access line on stdout')
})

test('log.access: false → no access lines', { timeout: 20_000 }, async (t) => {
  const { child, port } = await start(t, '{ level: info, access: false }')
  for (let i = 0; i < 3; i++) { const r = await request(`http://127.0.0.1:${port}/q${i}`, { headers: { authorization: SECRET } }); await r.body.arrayBuffer() }
  child.child.kill('SIGTERM')
  assert.equal((await child.waitExit(10_000)).code, 0)
  assert.equal(accessLines(child).length, 0)
  assert.ok(child.jsonLines().length > 0, 'other info logs are still written')
  assert.ok(!child.stdout.includes(SECRET))
})
