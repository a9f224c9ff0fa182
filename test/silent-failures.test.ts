// Issue #15, "silent failures": an unreachable upstream at start and a shadow that keeps failing
// are logged (the process keeps serving), against a real penumbra process and its JSON log.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { childConfigYaml, closedPortUrl, freePort, httpServer, spawnPenumbra, tempDir, writeFile } from './helpers/proxy-util.js'
import { waitFor } from './helpers/servers.js'

test('unreachable upstreams at start get one warning each; a failing shadow is warned about at most once a minute', { timeout: 30_000 }, async (t) => {
  const up = await httpServer((req, res) => { req.resume(); res.end('{"predictions":[1]}') })
  t.after(() => up.stop())
  const deadShadow = await closedPortUrl()
  const deadBackend = await closedPortUrl()
  const dir = tempDir(t)
  const port = await freePort()
  const adminPort = await freePort()
  const file = writeFile(dir, 'c.yaml', childConfigYaml({
    port,
    adminPort,
    primary: up.url,
    extra: [
      'backends:',
      `  spare: { url: "${deadBackend}" }`,
      'shadows:',
      `  - { name: gone, url: "${deadShadow}", sampleRate: 1 }`
    ].join('\n')
  }))
  const child = await spawnPenumbra(file, { port, adminPort })
  t.after(() => child.kill())
  const warnings = (): Array<Record<string, unknown>> => child.jsonLines().filter((l) => l.level === 'warn' || l.level === 40)
  await waitFor(() => warnings().length >= 2, 5000, 'the start-up warnings')
  const start = warnings()
  assert.ok(start.some((l) => l.backend === 'spare' && /^unreachable at start: backend "spare" 127\.0\.0\.1:\d+: ECONNREFUSED; penumbra keeps running$/.test(String(l.msg))), JSON.stringify(start))
  assert.ok(start.some((l) => l.shadow === 'gone' && /^unreachable at start: shadow "gone" /.test(String(l.msg))), JSON.stringify(start))
  assert.ok(!start.some((l) => l.backend === 'primary'), 'the reachable primary is not warned about')
  for (let i = 0; i < 5; i++) {
    const r = await request(`http://127.0.0.1:${port}/v1/models/m:predict`, { method: 'POST', body: '{"instances":[1]}' })
    assert.equal(r.statusCode, 200, 'the client path is not affected')
    await r.body.text()
  }
  // Barrier: all five shadow calls have ended (counted) before the warnings are read.
  await waitFor(async () => /penumbra_shadow_requests_total\{shadow="gone",outcome="error"\} 5/.test(await (await request(`http://127.0.0.1:${adminPort}/metrics`)).body.text()), 5000, 'five failed shadow calls')
  const failingLines = (): Array<Record<string, unknown>> => warnings().filter((l) => /requests are failing/.test(String(l.msg)))
  await waitFor(() => failingLines().length > 0, 5000, 'the failing-shadow warning')
  const failing = failingLines()
  assert.equal(failing.length, 1, JSON.stringify(failing))
  assert.equal(failing[0]!.failures, 1, 'the first failure is warned about at once, the next four wait for the minute')
  assert.equal(failing[0]!.shadow, 'gone')
  assert.equal(failing[0]!.reason, 'refused')
})
