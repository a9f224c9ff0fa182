// Issue #16: the LLM demo (config/demo-llm.yaml, `npm run start:llm`): two built-in
// OpenAI-compatible servers that stream, so a new user sees streamed comparisons without any API
// key. Here the same servers (src/demo/llm-model-server.ts) on port 0 behind an in-process penumbra.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import OpenAI from 'openai'
import { startDemoLlm } from '../src/demo/llm-model-server.js'
import { loadConfigFile } from '../src/config/load.js'
import { startPenumbra, urls, waitFor } from './helpers/servers.js'

test('config/demo-llm.yaml is valid and describes a primary backend and a candidate shadow with LLM keys', () => {
  const c = loadConfigFile('config/demo-llm.yaml')
  assert.equal(c.primary, 'llm')
  assert.equal(c.shadows[0]!.name, 'candidate')
  assert.equal(c.shadows[0]!.llm.maxTokensPerMinute, 200000)
  assert.equal(c.llm.mirrorStateful, false)
})

test('the demo LLM pair streams through penumbra and yields streamed comparisons with disagreements', { timeout: 60_000 }, async (t) => {
  const primary = await startDemoLlm(0, { role: 'primary', eventDelayMs: 0, firstTokenMs: 0 })
  const candidate = await startDemoLlm(0, { role: 'candidate', eventDelayMs: 0, firstTokenMs: 0 })
  const url = (s: typeof primary): string => `http://127.0.0.1:${(s.address() as AddressInfo).port}`
  const app = await startPenumbra({
    backends: { llm: { url: url(primary) } },
    primary: 'llm',
    shadows: [{ name: 'candidate', url: url(candidate), match: { paths: ['/v1/**'] } }],
    compare: { textSimilarity: 0.85 }
  })
  t.after(async () => {
    await app.stop()
    await Promise.all([primary, candidate].map(async (s) => await new Promise((resolve) => { s.close(resolve); s.closeAllConnections() })))
  })
  const client = new OpenAI({ baseURL: `${urls(app).proxy}/v1`, apiKey: 'none', maxRetries: 0 })
  const topics = ['Paris', 'Rome', 'Kyoto', 'jazz', 'chess', 'Lisbon', 'volcanoes', 'Prague', 'TypeScript', 'the moon', 'bread', 'tea', 'rivers', 'owls', 'glass', 'maps', 'tides', 'salt', 'bees', 'clocks']
  for (const topic of topics) {
    const s = await client.chat.completions.create({ model: 'demo', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: `Tell me about ${topic}` }] })
    let text = ''
    for await (const c of s) text += c.choices[0]?.delta?.content ?? ''
    assert.ok(text.length > 10)
  }
  const weather = await client.chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'What is the weather in Oslo?' }] })
  assert.equal(weather.choices[0]!.message.tool_calls?.[0]?.type === 'function' && weather.choices[0]!.message.tool_calls[0].function.name, 'get_weather')
  const r = await client.responses.create({ model: 'demo', input: 'Tell me about Paris', stream: true })
  await r.toReadableStream().pipeTo(new WritableStream())
  let report: { shadows: Array<{ comparisons: { total: number }, llm: { agreement: Record<string, { agree: number, disagree: number }>, timeToFirstTokenMs: { samples: number } } }> } | undefined
  await waitFor(async () => {
    report = await (await request(`${urls(app).admin}/report`)).body.json() as typeof report
    return report!.shadows[0]!.comparisons.total === topics.length + 2
  }, 20_000, 'every comparison')
  const llm = report!.shadows[0]!.llm
  assert.ok(llm.agreement.content!.agree > 0 && llm.agreement.content!.agree + llm.agreement.content!.disagree === topics.length + 1)
  assert.ok(llm.agreement.content!.disagree + llm.agreement.finish_reason!.disagree > 0, 'the candidate disagrees somewhere')
  assert.equal(llm.timeToFirstTokenMs.samples, topics.length + 1, 'every streamed pair timed')
})
