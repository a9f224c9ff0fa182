// Issue #19 with --workers: POST /feedback on the primary process reaches the worker that logged
// the prediction (memory store: every worker is asked and the answers merged per item), results
// are counted once (by the primary), and GET /quality sums every worker's tallies.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { freePort, tempDir, writeFile, spawnPenumbra, childConfigYaml } from './helpers/proxy-util.js'
import { startUpstream } from './helpers/servers.js'
import { scriptedModel } from './helpers/feedback-rig.js'
import { metricValue } from './helpers/shadow-util.js'
import { waitFor } from './helpers/common.js'

test('--workers 2, memory store: labels join whichever worker logged the prediction; counted once', { timeout: 60_000 }, async (t) => {
  const primary = await startUpstream(scriptedModel('p'))
  const shadow = await startUpstream(scriptedModel('s'))
  const port = await freePort()
  const adminPort = await freePort()
  const dir = tempDir(t)
  const file = writeFile(dir, 'p.yaml', childConfigYaml({ port, adminPort, primary: primary.url, extra: `shadows: [{ name: cand, url: "${shadow.url}" }]\nworkers: 2` }))
  const child = await spawnPenumbra(file, { port, adminPort, readyTimeoutMs: 20_000 })
  t.after(async () => { await child.kill(); await primary.close(); await shadow.close() })
  const admin = `http://127.0.0.1:${adminPort}`
  const metrics = async (): Promise<string> => await (await request(`${admin}/metrics`)).body.text()

  const ids = Array.from({ length: 12 }, (_, i) => `w-${i}`)
  for (const id of ids) {
    // A new connection per request, so both workers answer some.
    const r = await request(`http://127.0.0.1:${port}/v1/models/m:predict`, { method: 'POST', body: JSON.stringify({ instances: [{ p: 'cat', s: 'dog' }] }), headers: { 'x-request-id': id, connection: 'close' } })
    await r.body.text()
  }
  await waitFor(async () => metricValue(await metrics(), 'penumbra_feedback_predictions_total', { model: 'primary' }) >= ids.length, 15_000, 'every prediction logged')
  const res = await request(`${admin}/feedback`, { method: 'POST', body: JSON.stringify([...ids.map((requestId) => ({ requestId, label: 'cat' })), { requestId: 'nope', label: 'cat' }]) })
  const body = await res.body.json() as any
  assert.equal(res.statusCode, 200)
  assert.deepEqual(body.counts, { joined: 12, unknown: 1, expired: 0, duplicate: 0, invalid: 0 })
  const q = await (await request(`${admin}/quality`)).body.json() as any
  assert.equal(q.workers, 2)
  assert.equal(q.models.find((m: any) => m.model === 'primary').accuracy.correct, 12)
  assert.equal(q.paired[0].discordant.primaryOnly, 12)
  const m = await metrics()
  assert.equal(metricValue(m, 'penumbra_feedback_total', { result: 'joined' }), 12)
  assert.equal(metricValue(m, 'penumbra_feedback_total', { result: 'unknown' }), 1)
  assert.equal(metricValue(m, 'penumbra_feedback_labelled_total', { model: 'primary' }), 12)
})
