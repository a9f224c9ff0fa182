// Issue #16 through the proxy: the official openai SDK streams through penumbra from a fake
// OpenAI server; shadows get their copy; streamed answers are reassembled and compared; a shadow
// stream cut off before its end is shadow_error (truncated); a non-OpenAI event stream is
// `unsupported` (issue #15), not `unparseable`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import OpenAI from 'openai'
import { startFakeOpenAI } from './helpers/fake-openai.js'
import { startPenumbra, startUpstream, urls, waitFor } from './helpers/servers.js'
import { metricValue } from './helpers/shadow-util.js'

test('streamed chat completions through penumbra: the client gets the stream, shadows are compared, truncation and unknown streams counted', { timeout: 30_000 }, async (t) => {
  const primary = await startFakeOpenAI({ answer: { content: 'The capital of France is Paris.' } })
  const same = await startFakeOpenAI({ answer: { content: 'The capital of France is Paris.' } })
  const cut = await startFakeOpenAI({ answer: { content: 'The capital of France is Paris.' }, cutAfter: 3, cutMode: 'end' })
  const other = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.end('event: tick\ndata: not-json\n\n')
  })
  const app = await startPenumbra({
    primary: { url: primary.url },
    shadows: [
      { name: 'same', url: same.url, match: { paths: ['/v1/**'] } },
      { name: 'cut', url: cut.url, match: { paths: ['/v1/**'] } },
      { name: 'other', url: other.url, match: { paths: ['/v1/**'] } }
    ]
  })
  t.after(async () => { await app.stop(); await Promise.all([primary.close(), same.close(), cut.close(), other.close()]) })
  const { proxy, admin } = urls(app)
  const client = new OpenAI({ baseURL: `${proxy}/v1`, apiKey: 'sk-test', maxRetries: 0 })
  const stream = await client.chat.completions.create({ model: 'm', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Capital of France?' }] })
  let text = ''
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? ''
  assert.equal(text, 'The capital of France is Paris.', 'the client got the whole stream')
  const scrape = async (): Promise<string> => await (await request(`${admin}/metrics`)).body.text()
  await waitFor(async () => {
    const m = await scrape()
    return ['same', 'cut', 'other'].every((s) => ['match', 'mismatch', 'shadow_error', 'unparseable', 'unsupported'].some((o) => metricValue(m, 'penumbra_comparisons_total', { shadow: s, outcome: o }) > 0))
  }, 10_000, 'a comparison for each shadow')
  const m = await scrape()
  assert.equal(metricValue(m, 'penumbra_comparisons_total', { shadow: 'same', outcome: 'match' }), 1, 'a streamed answer compared like any other')
  assert.equal(metricValue(m, 'penumbra_llm_agreement_total', { shadow: 'same', kind: 'content', outcome: 'agree' }), 1)
  assert.equal(metricValue(m, 'penumbra_comparisons_total', { shadow: 'cut', outcome: 'shadow_error' }), 1, 'a cut-off shadow stream is its error')
  assert.equal(metricValue(m, 'penumbra_comparison_shadow_errors_total', { shadow: 'cut', reason: 'truncated' }), 1)
  assert.equal(metricValue(m, 'penumbra_comparisons_total', { shadow: 'other', outcome: 'unsupported' }), 1)
  assert.equal(metricValue(m, 'penumbra_comparisons_total', { shadow: 'other', outcome: 'unparseable' }), 0)
  // Time to first token and tokens, for the primary backend and for each complete shadow stream.
  for (const upstream of ['primary', 'same']) {
    assert.equal(metricValue(m, 'penumbra_llm_time_to_first_token_seconds_count', { upstream }), 1, upstream)
    assert.equal(metricValue(m, 'penumbra_llm_time_per_output_token_seconds_count', { upstream }), 1, upstream)
    assert.ok(metricValue(m, 'penumbra_llm_tokens_total', { upstream, kind: 'output' }) > 0, upstream)
    assert.equal(metricValue(m, 'penumbra_llm_tokens_total', { upstream, kind: 'input' }), 12, upstream)
  }
  assert.equal(metricValue(m, 'penumbra_llm_time_to_first_token_seconds_count', { upstream: 'cut' }), 0, 'a truncated stream has no timing')
})
