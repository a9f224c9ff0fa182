// Issue #15: `penumbra report` (npx penumbra report in a clone): parseArgs, the admin token, and
// "no comparisons yet" with the reason instead of a 0% rate over nothing.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { runCli, closedPortUrl } from './helpers/proxy-util.js'
import { startPenumbra, startUpstream, urls, waitFor } from './helpers/servers.js'

test('penumbra report: token from --token or PENUMBRA_ADMIN_TOKEN; a shadow whose every call failed says so', { timeout: 30_000 }, async (t) => {
  const up = await startUpstream()
  const dead = await closedPortUrl()
  const token = 'report-cli-token'
  const app = await startPenumbra({
    primary: { url: up.url },
    admin: { host: '127.0.0.1', port: 0, token },
    shadows: [{ name: 'down', url: dead, sampleRate: 1 }, { name: 'idle', url: up.url, sampleRate: 0 }, { name: 'ok', url: up.url, sampleRate: 1 }]
  })
  t.after(async () => { await app.stop(); await up.close() })
  const { proxy, admin } = urls(app)
  const r = await request(`${proxy}/v1/models/m:predict`, { method: 'POST', body: '{"instances":[1]}', headers: { 'content-type': 'application/json' } })
  await r.body.text()
  const auth = { authorization: `Bearer ${token}` }
  await waitFor(async () => {
    const rep = await (await request(`${admin}/report`, { headers: auth })).body.json() as { shadows: Array<{ shadow: string, comparisons: { total: number } }> }
    return rep.shadows.find((s) => s.shadow === 'down')!.comparisons.total === 1 && rep.shadows.find((s) => s.shadow === 'ok')!.comparisons.total === 1
  }, 10_000, 'both comparisons')

  const refused = await runCli(['report', '--admin', admin], { env: { PENUMBRA_ADMIN_TOKEN: '' } })
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /answered 401 \(give the admin token: --token TOKEN or PENUMBRA_ADMIN_TOKEN\)/)
  const [flag, env] = await Promise.all([runCli(['report', '--admin', admin, '--token', token]), runCli(['report', '--admin', admin], { env: { PENUMBRA_ADMIN_TOKEN: token } })])
  for (const out of [flag, env]) {
    assert.equal(out.code, 0, out.stderr)
    assert.match(out.stdout, /shadow down\n[^]*?disagreement {8}no comparisons yet: 1 of 1 mirrored requests failed \(error 1, timeout 0\)/)
    assert.match(out.stdout, /shadow idle\n[^]*?disagreement {8}no comparisons yet: its sample rate is 0; no request was mirrored yet/)
    assert.match(out.stdout, /shadow ok\n[^]*?request disagreement +0\.00% +95% CI \[0\.00%, [0-9.]+%\] +\(0\/1\)/)
    assert.doesNotMatch(out.stdout, /\(0\/0\)/, 'no rate over nothing')
  }
  const json = await runCli(['report', '--admin', admin, '--token', token, '--json'])
  const parsed = JSON.parse(json.stdout) as { shadows: Array<{ shadow: string, noComparisons: string | null }> }
  assert.equal(parsed.shadows.find((s) => s.shadow === 'ok')!.noComparisons, null)
  const bad = await runCli(['report', '--admn', admin])
  assert.equal(bad.code, 2)
  assert.match(bad.stderr, /--admn/)
})
