import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Client, request } from 'undici'
import { childConfigYaml, freePort, httpServer, probePort, spawnPenumbra, tempDir, writeFile } from './helpers/proxy-util.js'
import { waitFor } from './helpers/servers.js'

// Issue #2: `--workers 2` forks two proxy processes sharing the port; the primary process serves
// the admin listener, whose /metrics aggregates both workers; SIGTERM stops everything, exit 0.

function sum (text: string, name: string): number {
  let total = 0
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) total += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return total
}

test('--workers 2: requests served by both workers, /metrics sums them, SIGTERM exits 0', { timeout: 30_000 }, async (t) => {
  const peers = new Set<number>()
  const up = await httpServer((req, res) => {
    peers.add(req.socket.remotePort!)
    req.resume()
    req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"ok":true}') })
  })
  t.after(() => up.stop())
  const dir = tempDir(t)
  const port = await freePort()
  const adminPort = await freePort()
  const file = writeFile(dir, 'cluster.yaml', childConfigYaml({ port, adminPort, primary: up.url }))
  const child = await spawnPenumbra(file, { port, adminPort, extra: ['--workers', '2'], readyTimeoutMs: 15_000 })
  t.after(() => child.kill())
  const admin = `http://127.0.0.1:${adminPort}`
  // Both workers up: the admin's /report says how many workers answered over IPC.
  await waitFor(async () => {
    const r = await request(`${admin}/report`)
    const body = await r.body.json() as { workers?: number }
    return r.statusCode === 200 && body.workers === 2
  }, 15_000, 'both workers to answer the admin')

  const send = async (i: number): Promise<void> => {
    // A fresh connection per request, so the cluster's round-robin spreads them.
    const c = new Client(`http://127.0.0.1:${port}`)
    const r = await c.request({ path: `/r/${i}`, method: 'POST', body: '{}', headers: { connection: 'close' } })
    assert.equal(r.statusCode, 200)
    assert.equal(await r.body.text(), '{"ok":true}')
    await c.close()
  }
  let N = 0
  while (N < 20) await send(N++)
  // A worker that was still starting may have missed the first ones: a few more until both served.
  while (peers.size < 2 && N < 60) await send(N++)
  // Two worker pools reached the upstream (each worker has its own connection pool).
  assert.ok(peers.size >= 2, `upstream connections from ${peers.size} pool(s)`)

  let text = ''
  await waitFor(async () => {
    const m = await request(`${admin}/metrics`)
    text = await m.body.text()
    return m.statusCode === 200 && sum(text, 'penumbra_requests_total') === N
  }, 10_000, `penumbra_requests_total to total ${N}`).catch(() => {})
  assert.equal(sum(text, 'penumbra_requests_total'), N, text.split('\n').filter((l) => l.startsWith('penumbra_requests_total')).join('\n'))
  assert.match(text, new RegExp(`^penumbra_requests_total\\{method="POST",code="200"\\} ${N}$`, 'm'))
  assert.equal(sum(text, 'penumbra_request_duration_seconds_count'), N)

  const health = await request(`${admin}/healthz`)
  assert.equal(health.statusCode, 200)
  await health.body.arrayBuffer()
  const ready = await request(`${admin}/readyz`)
  assert.equal(ready.statusCode, 200)
  await ready.body.arrayBuffer()

  child.child.kill('SIGTERM')
  assert.deepEqual(await child.waitExit(15_000), { code: 0, signal: null })
  assert.equal(await probePort(port), 'refused')
  assert.equal(await probePort(adminPort), 'refused')
})
