import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { Client, request } from 'undici'
import { childConfigYaml, freePort, httpServer, probePort, spawnPenumbra, tempDir, writeFile, type PenumbraChild } from './helpers/proxy-util.js'
import { waitFor } from './helpers/servers.js'
import { processTree } from './helpers/process-tree.js'

// Issue #2: `--workers 2` forks two proxy processes sharing the port; the primary process serves
// the admin listener, whose /metrics aggregates both workers; SIGTERM stops everything, exit 0.

function sum (text: string, name: string): number {
  let total = 0
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) total += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return total
}

/** Starts penumbra with `--workers 2` and waits until both workers answer the admin over IPC. */
async function startCluster (t: TestContext, primary: string, extra?: string): Promise<{ child: PenumbraChild, port: number, admin: string, file: string }> {
  const dir = tempDir(t)
  const port = await freePort()
  const adminPort = await freePort()
  const file = writeFile(dir, 'cluster.yaml', childConfigYaml({ port, adminPort, primary, extra }))
  const child = await spawnPenumbra(file, { port, adminPort, extra: ['--workers', '2'], readyTimeoutMs: 15_000 })
  t.after(() => child.kill())
  const admin = `http://127.0.0.1:${adminPort}`
  // The admin's /report says how many workers answered over IPC.
  await waitFor(async () => {
    const r = await request(`${admin}/report`)
    const body = await r.body.json() as { workers?: number }
    return r.statusCode === 200 && body.workers === 2
  }, 15_000, 'both workers to answer the admin')
  return { child, port, admin, file }
}

test('--workers 2: requests served by both workers, /metrics sums them, SIGTERM exits 0', { timeout: 30_000 }, async (t) => {
  const peers = new Set<number>()
  const up = await httpServer((req, res) => {
    peers.add(req.socket.remotePort!)
    req.resume()
    req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"ok":true}') })
  })
  t.after(() => up.stop())
  const { child, port, admin } = await startCluster(t, up.url)

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
  assert.equal(await probePort(Number(new URL(admin).port)), 'refused')
})

test('--workers 2: SIGHUP reloads are counted once; a PATCH that misses a worker is a 503 that says so', { timeout: 40_000 }, async (t) => {
  const up = await httpServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200); res.end('{}') }) })
  t.after(() => up.stop())
  const { child, admin, file } = await startCluster(t, up.url, `shadows: [{ name: cand, url: "${up.url}", sampleRate: 0.5 }]`)
  const metrics = async (): Promise<string> => { const r = await request(`${admin}/metrics`); return await r.body.text() }
  const patch = async (sampleRate: number): Promise<{ status: number, body: any }> => {
    const r = await request(`${admin}/shadows/cand`, { method: 'PATCH', body: JSON.stringify({ sampleRate }), headers: { 'content-type': 'application/json' } })
    return { status: r.statusCode, body: await r.body.json() }
  }

  // The primary reads the file and counts; the workers' copies of the counter are left out.
  child.child.kill('SIGHUP')
  await waitFor(async () => /^penumbra_config_reloads_total\{result="ok"\} 1$/m.test(await metrics()), 10_000, 'the reload to be counted')
  writeFileSync(file, 'listen: [not, a, map]\n')
  child.child.kill('SIGHUP')
  await waitFor(async () => /^penumbra_config_reloads_total\{result="invalid"\} 1$/m.test(await metrics()), 10_000, 'the invalid reload to be counted')
  const text = await metrics()
  assert.equal(text.match(/^# TYPE penumbra_config_reloads_total /gm)?.length, 1, 'one metric family')

  // Every worker applies it: 200.
  assert.equal((await patch(0.25)).status, 200)
  const pids = processTree(child.child.pid!).slice(1) // the workers: the primary's only descendants
  assert.equal(pids.length, 2, `worker pids ${pids.join(',')}`)
  // One worker cannot answer (stopped): the PATCH reaches only the other, and the caller hears it.
  process.kill(pids[0]!, 'SIGSTOP')
  let resumed = false
  t.after(() => { if (!resumed) process.kill(pids[0]!, 'SIGCONT') })
  const partial = await patch(0.75)
  process.kill(pids[0]!, 'SIGCONT')
  resumed = true
  assert.equal(partial.status, 503)
  assert.equal(partial.body.error, 'PENUMBRA_WORKER_UNAVAILABLE')
  assert.match(partial.body.message, /applied in 1 of 2 workers \(worker \d+ did not answer\)/)
  // Repeating it once the worker is back reaches both.
  const again = await patch(0.75)
  assert.equal(again.status, 200)
  const shadows = await request(`${admin}/shadows`)
  const list = await shadows.body.json() as Array<{ name: string, state: { sampleRate: number } }>
  assert.equal(list[0]!.state.sampleRate, 0.75)
  // An unknown shadow is still a 404 from every worker.
  const r = await request(`${admin}/shadows/nope`, { method: 'PATCH', body: '{"enabled":false}', headers: { 'content-type': 'application/json' } })
  assert.equal(r.statusCode, 404)
  await r.body.arrayBuffer()
})

test('--workers 2: PUT /primary reaches every worker, and rollback too (issue #14)', { timeout: 30_000 }, async (t) => {
  const marker = (name: string) => httpServer((req, res) => {
    req.resume()
    req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name }); res.end(`{"from":"${name}"}`) })
  })
  const blue = await marker('blue')
  const green = await marker('green')
  t.after(async () => { await blue.stop(); await green.stop() })
  const { port, admin } = await startCluster(t, blue.url, `backends: { green: { url: "${green.url}" } }`)
  const froms = async (n: number): Promise<Set<string>> => {
    const seen = new Set<string>()
    for (let i = 0; i < n; i++) {
      // A fresh connection each time, so both workers are asked.
      const c = new Client(`http://127.0.0.1:${port}`)
      const r = await c.request({ path: '/x', method: 'POST', body: '{}', headers: { connection: 'close' } })
      seen.add(String(r.headers['x-backend']))
      await r.body.dump()
      await c.close()
    }
    return seen
  }
  assert.deepEqual(await froms(10), new Set(['blue']))
  const sw = await request(`${admin}/primary`, { method: 'PUT', body: '{"backend":"green"}' })
  assert.equal(sw.statusCode, 200)
  assert.equal((await sw.body.json() as { to: string }).to, 'green')
  assert.deepEqual(await froms(10), new Set(['green']))
  const status = await (await request(`${admin}/primary`)).body.json() as { backend: string, previous: string }
  assert.deepEqual([status.backend, status.previous], ['green', 'primary'])
  const metrics = await (await request(`${admin}/metrics`)).body.text()
  assert.equal(sum(metrics, 'penumbra_primary_switches_total'), 1, 'counted once, by the primary process')
  const rb = await request(`${admin}/primary/rollback`, { method: 'POST' })
  assert.equal(rb.statusCode, 200)
  await rb.body.dump()
  assert.deepEqual(await froms(10), new Set(['blue']))
})
