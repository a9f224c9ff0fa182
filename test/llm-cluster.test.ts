// Issue #16 with `--workers 2`: each worker holds half of a shadow's token budget (together they
// never spend more), the report sums the workers' LLM sections and budgets, and a SIGHUP reload
// keeps the split (the workers are sent the config with the --workers count).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { Client, request } from 'undici'
import { childConfigYaml, freePort, spawnPenumbra, tempDir, writeFile } from './helpers/proxy-util.js'
import { startFakeOpenAI } from './helpers/fake-openai.js'
import { waitFor } from './helpers/servers.js'

interface Report { workers?: number, shadows: Array<{ shadow: string, comparisons: { total: number }, llm: { settings: { stream: string, budget: { tokensPerMinute: number } }, timeToFirstTokenMs: { note: string | null }, agreement: Record<string, { agree: number }> } | null }> }

test('--workers 2: the token budget is split between the workers and summed in the report; stream off; a reload keeps the split', { timeout: 60_000 }, async (t) => {
  const primary = await startFakeOpenAI({ answer: { content: 'Paris.' } })
  const shadow = await startFakeOpenAI({ answer: { content: 'Paris.' } })
  t.after(async () => { await Promise.all([primary.close(), shadow.close()]) })
  const dir = tempDir(t)
  const port = await freePort()
  const adminPort = await freePort()
  const shadows = (budget: number): string => `shadows:\n  - name: cand\n    url: "${shadow.url}"\n    llm: { maxTokensPerMinute: ${budget}, stream: "off" }\n`
  const file = writeFile(dir, 'llm.yaml', childConfigYaml({ port, adminPort, primary: primary.url, extra: shadows(1000) }))
  const child = await spawnPenumbra(file, { port, adminPort, extra: ['--workers', '2'], readyTimeoutMs: 15_000 })
  t.after(() => child.kill())
  const admin = `http://127.0.0.1:${adminPort}`
  const report = async (): Promise<Report> => await (await request(`${admin}/report`)).body.json() as Report
  await waitFor(async () => (await report()).workers === 2, 15_000, 'both workers')

  const N = 6
  for (let i = 0; i < N; i++) {
    const c = new Client(`http://127.0.0.1:${port}`)
    const r = await c.request({ path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: `q${i}` }] }) })
    assert.match(await r.body.text(), /data: \[DONE\]/)
    await c.close()
  }
  let r: Report = { shadows: [] }
  await waitFor(async () => { r = await report(); return r.shadows[0]?.comparisons.total === N }, 15_000, 'every comparison')
  const llm = r.shadows[0]!.llm!
  assert.equal(llm.settings.budget.tokensPerMinute, 1000, 'two halves of 500')
  assert.equal(llm.settings.stream, 'off')
  assert.match(llm.timeToFirstTokenMs.note ?? '', /stream is off/)
  assert.equal(llm.agreement.content!.agree, N)
  for (const seen of shadow.seen) assert.equal(JSON.parse(seen.body.toString()).stream, false)

  writeFileSync(file, childConfigYaml({ port, adminPort, primary: primary.url, extra: shadows(2000) }))
  child.child.kill('SIGHUP')
  await waitFor(async () => (await report()).shadows[0]?.llm?.settings.budget.tokensPerMinute !== 1000, 15_000, 'the reload')
  assert.equal((await report()).shadows[0]!.llm!.settings.budget.tokensPerMinute, 2000, 'still split in two after the reload')
})
