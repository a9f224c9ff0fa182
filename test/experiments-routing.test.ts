// Issue #17, routing: an experiment arm answers the client, sticky per unit; the arm is named to
// the client and the backend; exposures and non-enrolments are counted; PATCH switches it off.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request, Agent } from 'undici'
import { startPenumbra, startUpstream, urls, type Upstream } from './helpers/servers.js'
import { metricValue } from './helpers/shadow-util.js'

function marked (name: string): Promise<Upstream> {
  return startUpstream((req, res) => {
    const text = JSON.stringify({ from: name, arm: req.headers['x-penumbra-experiment'] ?? null })
    res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name, 'content-length': Buffer.byteLength(text) })
    res.end(text)
  })
}

test('an experiment routes each unit to one arm, stickily; header to client and backend; counted; PATCH enabled:false sends all to the control', { timeout: 30_000 }, async (t) => {
  const blue = await marked('blue')
  const cand = await marked('cand')
  const token = 'experiment-token'
  const app = await startPenumbra({
    backends: { blue: { url: blue.url }, cand: { url: cand.url } },
    primary: 'blue',
    admin: { host: '127.0.0.1', port: 0, token },
    experiments: [{
      name: 'ranker-ab',
      unit: 'header:x-user-id',
      match: { methods: ['POST'], paths: ['/v1/models/*'] },
      targeting: [{ header: 'x-country', in: ['US', 'CA'] }],
      variants: [{ name: 'control', backend: 'blue' }, { name: 'treatment', backend: 'cand' }]
    }]
  })
  const agent = new Agent({ connections: 8 })
  t.after(async () => { await agent.close(); await app.stop(); await blue.close(); await cand.close() })
  const { proxy, admin } = urls(app)
  const auth = { authorization: `Bearer ${token}` }
  const send = async (headers: Record<string, string>, path = '/v1/models/m:predict', method: 'POST' | 'GET' = 'POST'): Promise<{ backend: string, arm: string | null, header: string | undefined }> => {
    const r = await request(`${proxy}${path}`, { dispatcher: agent, method, headers, body: method === 'POST' ? '{}' : null })
    const body = await r.body.json() as { from: string, arm: string | null }
    assert.equal(r.statusCode, 200)
    assert.equal(r.headers['x-backend'], body.from)
    return { backend: body.from, arm: body.arm, header: r.headers['x-penumbra-experiment'] as string | undefined }
  }
  const seen = new Map<string, string>()
  for (let round = 0; round < 2; round++) {
    for (let u = 0; u < 40; u++) {
      const got = await send({ 'x-user-id': `user-${u}`, 'x-country': 'US' })
      const variant = got.backend === 'blue' ? 'control' : 'treatment'
      assert.equal(got.header, `ranker-ab=${variant}`, 'the client is told its arm')
      assert.equal(got.arm, `ranker-ab=${variant}`, 'so is the backend')
      if (round === 0) seen.set(`user-${u}`, got.backend)
      else assert.equal(got.backend, seen.get(`user-${u}`), `user-${u} is sticky`)
    }
  }
  const arms = [...seen.values()]
  assert.ok(arms.includes('blue') && arms.includes('cand'), 'both arms get units')
  // Not enrolled: no unit, targeting; not matched (a GET, another path) is not the experiment's at all.
  assert.deepEqual(await send({ 'x-country': 'US' }), { backend: 'blue', arm: null, header: undefined })
  assert.deepEqual(await send({ 'x-user-id': 'user-1', 'x-country': 'FR' }), { backend: 'blue', arm: null, header: undefined })
  assert.equal((await send({ 'x-user-id': 'user-1' }, '/other')).header, undefined)
  // A client cannot pick its arm: a forged header is removed before the backend sees it.
  assert.equal((await send({ 'x-penumbra-experiment': 'ranker-ab=treatment' })).arm, null)

  const text = await (await request(`${admin}/metrics`)).body.text()
  const control = arms.filter((b) => b === 'blue').length
  assert.equal(metricValue(text, 'penumbra_experiment_exposures_total', { experiment: 'ranker-ab', variant: 'control' }), 2 * control)
  assert.equal(metricValue(text, 'penumbra_experiment_exposures_total', { experiment: 'ranker-ab', variant: 'treatment' }), 2 * (40 - control))
  assert.equal(metricValue(text, 'penumbra_experiment_not_enrolled_total', { experiment: 'ranker-ab', reason: 'no_unit' }), 2, 'no unit (also the forged one)')
  assert.equal(metricValue(text, 'penumbra_experiment_not_enrolled_total', { experiment: 'ranker-ab', reason: 'targeting' }), 1)
  assert.equal(metricValue(text, 'penumbra_experiment_not_enrolled_total', { experiment: 'ranker-ab', reason: 'traffic' }), 0)
  assert.equal(metricValue(text, 'penumbra_experiment_requests_total', { experiment: 'ranker-ab', variant: 'treatment', code: '200' }), 2 * (40 - control))
  assert.equal(metricValue(text, 'penumbra_experiment_duration_seconds_count', { experiment: 'ranker-ab', variant: 'control' }), 2 * control)

  const list = await (await request(`${admin}/experiments`, { headers: auth })).body.json() as Array<{ name: string, state: { enabled: boolean, traffic: number }, variants: Array<{ name: string, exposures: number }>, notEnrolled: Record<string, number> }>
  assert.equal(list.length, 1)
  assert.deepEqual(list[0]!.variants.map((v) => [v.name, v.exposures]), [['control', 2 * control], ['treatment', 2 * (40 - control)]])
  assert.deepEqual(list[0]!.notEnrolled, { no_unit: 2, targeting: 1, traffic: 0, other_experiment: 0 })
  const one = await request(`${admin}/experiments/ranker-ab`, { headers: auth })
  assert.equal(one.statusCode, 200)
  await one.body.text()
  const missing = await request(`${admin}/experiments/nope`, { headers: auth })
  assert.equal(missing.statusCode, 404)
  await missing.body.text()

  // PATCH: token needed; bad bodies 400; enabled:false sends everyone it matches to the control.
  const patch = async (body: string, headers: Record<string, string> = auth): Promise<{ status: number, json: any }> => {
    const r = await request(`${admin}/experiments/ranker-ab`, { method: 'PATCH', body, headers })
    return { status: r.statusCode, json: await r.body.json() }
  }
  assert.equal((await patch('{"enabled":false}', {})).status, 401)
  assert.equal((await patch('{"traffic":0}')).json.message, 'traffic: must be a number within (0, 1]')
  assert.equal((await patch('{"weights":1}')).status, 400)
  const off = await patch('{"enabled":false}')
  assert.equal(off.status, 200)
  assert.equal(off.json.state.enabled, false)
  const treated = [...seen.entries()].find(([, b]) => b === 'cand')![0]
  assert.deepEqual(await send({ 'x-user-id': treated, 'x-country': 'US' }), { backend: 'blue', arm: null, header: undefined })
  const on = await patch('{"enabled":true,"traffic":0.5}')
  assert.deepEqual(on.json.state, { enabled: true, traffic: 0.5, slots: [0, 0.5] })
})
