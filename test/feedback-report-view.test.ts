// Issue #19, operating it: `penumbra report` prints the quality part, and the status page's
// quality panel (in a real chromium) shows accuracy per model, the paired verdict and a chart of
// accuracy over time with one line per model.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runCli } from './helpers/proxy-util.js'
import { CHROMIUM } from './helpers/observability-harness.js'
import { feedbackRig } from './helpers/feedback-rig.js'

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']

test('penumbra report and the status page show quality per model and the paired verdict', { timeout: 90_000 }, async (t) => {
  const r = await feedbackRig(t)
  const labels = []
  for (let i = 0; i < 10; i++) {
    await r.predict(`v-${i}`, [{ p: i < 6 ? 'cat' : 'dog', s: 'cat' }])
    labels.push({ requestId: `v-${i}`, label: 'cat' })
  }
  await r.logged(10)
  assert.equal((await r.post(labels)).json.counts.joined, 10)

  const cli = await runCli(['report', '--admin', r.admin])
  assert.equal(cli.code, 0, cli.stderr)
  assert.match(cli.stdout, /quality \(labels posted to POST \/feedback\)/)
  assert.match(cli.stdout, /primary +primary +accuracy 60\.00% {2}95% CI \[\d+\.\d+%, \d+\.\d+%\] {2}\(6\/10\)/)
  assert.match(cli.stdout, /primary vs cand: the shadow cand was right on 40\.0% more of the 10 labelled requests/)
  const json = JSON.parse((await runCli(['report', '--admin', r.admin, '--json'])).stdout)
  assert.equal(json.quality.paired[0].n, 10)

  if (CHROMIUM.skip !== false) { t.diagnostic(`status page part skipped: ${String(CHROMIUM.skip)}`); return }
  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: CHROMIUM.path(), args: CHROMIUM_ARGS, timeout: 30_000 })
  t.after(async () => { await browser.close() })
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  await page.goto(`${r.admin}/`, { waitUntil: 'domcontentloaded' })
  await page.waitForSelector('#view-quality tr[data-model="cand"]', { timeout: 15_000 })
  assert.match(await page.textContent('#view-quality tr[data-model="primary"]') ?? '', /60\.00% \[/)
  assert.match(await page.textContent('#view-quality tr[data-model="cand"]') ?? '', /100\.00% \[/)
  assert.equal(await page.getAttribute('#view-quality .q-verdict', 'data-verdict'), 'no_difference_detected')
  // One series per model (a point, or a line once there are two minutes of labels).
  assert.equal(await page.locator('#view-quality svg [data-model]').count(), 2)
  assert.deepEqual(errors, [])
})
