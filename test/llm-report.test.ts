// Issue #16: the report of LLM answers. GET /report carries per shadow each agreement kind with
// its Wilson interval, and TTFT p50/p99 and tokens per answer next to the primary's on the same
// mirrored requests; GET /report/llm is that section alone (404 without LLM answers);
// `penumbra report` prints it; the status page's LLM view (in chromium) shows the same numbers.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import OpenAI from 'openai'
import { startFakeOpenAI } from './helpers/fake-openai.js'
import { startPenumbra, startUpstream, urls, waitFor } from './helpers/servers.js'
import { metricValue } from './helpers/shadow-util.js'
import { CHROMIUM } from './helpers/observability-harness.js'
import { renderReport } from '../src/admin/report-cli.js'
import { mergeReports, type ProcessReport } from '../src/admin/operations.js'
import type { Penumbra } from '../src/index.js'

const N = 6

/** A primary and two shadows: one that answers alike (with another usage), one that stops for `length`. */
async function llmStack (t: { after: (fn: () => Promise<void>) => void }): Promise<Penumbra> {
  const primary = await startFakeOpenAI({ answer: { content: 'Paris is the capital of France.', usage: { input: 10, output: 8 } } })
  const same = await startFakeOpenAI({ answer: { content: 'Paris is the capital of France.', usage: { input: 10, output: 6 } } })
  const cut = await startFakeOpenAI({ answer: { content: 'Paris is the', finishReason: 'length', usage: { input: 10, output: 3 } } })
  const app = await startPenumbra({ primary: { url: primary.url }, shadows: [{ name: 'same', url: same.url }, { name: 'short', url: cut.url, llm: { maxTokensPerMinute: 100000 } }] })
  t.after(async () => { await app.stop(); await Promise.all([primary.close(), same.close(), cut.close()]) })
  const client = new OpenAI({ baseURL: `${urls(app).proxy}/v1`, apiKey: 'sk-test', maxRetries: 0 })
  for (let i = 0; i < N; i++) {
    const s = await client.chat.completions.create({ model: 'm', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: `q${i}` }] })
    await s.toReadableStream().pipeTo(new WritableStream())
  }
  await waitFor(async () => {
    const m = await (await request(`${urls(app).admin}/metrics`)).body.text()
    return ['same', 'short'].every((s) => metricValue(m, 'penumbra_comparisons_total', { shadow: s, outcome: 'match' }) + metricValue(m, 'penumbra_comparisons_total', { shadow: s, outcome: 'mismatch' }) === N)
  }, 10_000, 'every comparison')
  return app
}

interface LlmJson {
  shadow: string
  agreement: Record<string, { agree: number, disagree: number, compared: number, rate: number, lower: number, upper: number }>
  timeToFirstTokenMs: { samples: number, primary: { p50: number, p99: number }, shadow: { p50: number, p99: number }, note: string | null }
  tokensPerAnswer: { answers: number, primary: { input: number, output: number }, shadow: { input: number, output: number } }
  settings: { stream: string, budget: { tokensPerMinute: number, spentThisMinute: number } | null }
}

test('GET /report and /report/llm: kinds with Wilson intervals, TTFT and tokens beside the primary\'s; penumbra report prints them', { timeout: 30_000 }, async (t) => {
  const app = await llmStack(t)
  const { admin } = urls(app)
  const report = await (await request(`${admin}/report`)).body.json() as { shadows: Array<{ shadow: string, llm: Omit<LlmJson, 'shadow'> }> }
  const short = report.shadows.find((s) => s.shadow === 'short')!.llm
  assert.deepEqual({ agree: short.agreement.finish_reason!.agree, disagree: short.agreement.finish_reason!.disagree }, { agree: 0, disagree: N })
  assert.equal(short.agreement.finish_reason!.rate, 1)
  assert.ok(short.agreement.finish_reason!.lower > 0.5 && short.agreement.finish_reason!.upper === 1)
  assert.equal(short.tokensPerAnswer.primary.output, 8)
  assert.equal(short.tokensPerAnswer.shadow.output, 3)
  assert.equal(short.tokensPerAnswer.shadow.input, 10)
  assert.equal(short.timeToFirstTokenMs.samples, N)
  assert.equal(short.settings.budget!.tokensPerMinute, 100000)
  assert.equal(short.settings.budget!.spentThisMinute, N * 13, 'the shadow\'s reported usage is spent')
  const same = report.shadows.find((s) => s.shadow === 'same')!.llm
  assert.equal(same.agreement.content!.agree, N)
  assert.equal(same.agreement.content!.lower, 0)
  assert.equal(same.settings.budget, null)

  const res = await request(`${admin}/report/llm`)
  assert.equal(res.statusCode, 200)
  const only = await res.body.json() as { shadows: LlmJson[] }
  assert.deepEqual(only.shadows.map((s) => s.shadow), ['same', 'short'])
  assert.deepEqual(only.shadows[1]!.agreement, short.agreement)

  const text = renderReport(report as never)
  assert.match(text, /LLM agreement/)
  assert.match(text, /finish_reason\s+100\.00%\s+\[\d+\.\d+%, 100\.00%\]\s+\(6\/6\)/)
  assert.match(text, /TTFT p50\/p99\s+primary [\d.]+ ms \/ [\d.]+ ms, short [\d.]+ ms \/ [\d.]+ ms \(6 requests\)/)
  assert.match(text, /tokens per answer\s+primary in 10 out 8, short in 10 out 3 \(6 answers\)/)
  assert.match(text, /token budget\s+78 of 100000 spent this minute/)

  // Two processes' shares (--workers) merge: counts, histograms and budgets add up.
  const part = (app as unknown as { reportData: () => ProcessReport }).reportData()
  const merged = mergeReports([part, structuredClone(part)], {}) as { shadows: Array<{ shadow: string, llm: LlmJson }> }
  const m = merged.shadows.find((s) => s.shadow === 'short')!.llm
  assert.equal(m.agreement.finish_reason!.disagree, 2 * N)
  assert.equal(m.timeToFirstTokenMs.samples, 2 * N)
  assert.equal(m.tokensPerAnswer.shadow.output, 3)
  assert.equal(m.settings.budget!.tokensPerMinute, 200000)
})

test('GET /report/llm is 404 without LLM answers (the status page then hides its LLM view)', { timeout: 30_000 }, async (t) => {
  const up = await startUpstream()
  const app = await startPenumbra({ primary: { url: up.url }, shadows: [{ name: 'v2', url: up.url }] })
  t.after(async () => { await app.stop(); await up.close() })
  await (await request(`${urls(app).proxy}/predict`, { method: 'POST', body: '{"x":1}', headers: { 'content-type': 'application/json' } })).body.text()
  const res = await request(`${urls(app).admin}/report/llm`)
  assert.equal(res.statusCode, 404)
  assert.equal((await res.body.json() as { error: string }).error, 'PENUMBRA_NOT_FOUND')
  const report = await (await request(`${urls(app).admin}/report`)).body.json() as { shadows: Array<{ llm: unknown }> }
  assert.equal(report.shadows[0]!.llm, null)
})

test('the status page\'s LLM view shows each kind with its interval and TTFT side by side (chromium)', { skip: CHROMIUM.skip, timeout: 90_000 }, async (t) => {
  const app = await llmStack(t)
  const { admin } = urls(app)
  const only = await (await request(`${admin}/report/llm`)).body.json() as { shadows: LlmJson[] }
  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: CHROMIUM.path(), args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'], timeout: 30_000 })
  t.after(() => browser.close())
  const page = await browser.newPage()
  page.setDefaultTimeout(10_000)
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  await page.goto(`${admin}/`)
  await page.waitForSelector('#view-llm:not([hidden]) .llm-card[data-shadow="short"]')
  const rate = await page.locator('.llm-card[data-shadow="short"] tr[data-kind="finish_reason"] td').nth(1).getAttribute('data-value')
  assert.equal(Number(rate), only.shadows[1]!.agreement.finish_reason!.rate)
  const cells = await page.locator('.llm-card[data-shadow="short"] tr[data-kind="finish_reason"] td').allTextContents()
  const k = only.shadows[1]!.agreement.finish_reason!
  assert.deepEqual(cells, ['finish_reason', '100.00%', `${(k.lower * 100).toFixed(2)}% – 100.00%`, '6 / 6'])
  const speed = await page.locator('.llm-card[data-shadow="short"] .llm-speed tbody tr').allTextContents()
  assert.equal(speed.length, 2)
  assert.match(speed[0]!, /^primary[\d.]+ ms[\d.]+ ms10 \/ 8$/)
  assert.match(speed[1]!, /^short[\d.]+ ms[\d.]+ ms10 \/ 3$/)
  assert.match((await page.locator('.llm-card[data-shadow="short"]').textContent())!, /token budget: 78 of 100000 spent this minute/)
  assert.deepEqual(errors, [])
})
