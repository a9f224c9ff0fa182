// Issue #16 at the proxy level: LLM streams through penumbra with the official openai SDK as the
// client and fake OpenAI-compatible servers (test/helpers/fake-openai.ts) as primary and shadows.
// Event-by-event delivery (barriers, no sleeps), a slow or hung shadow stream never touches the
// client's, and the LLM shadow safety rules: stateful calls skipped, a per-shadow token budget,
// `stream: off` copies, usage missing counted as unknown; and the report's LLM section.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import OpenAI from 'openai'
import { startFakeOpenAI } from './helpers/fake-openai.js'
import { startPenumbra, testConfig, urls, waitFor } from './helpers/servers.js'
import { metricValue } from './helpers/shadow-util.js'
import type { Penumbra } from '../src/index.js'
import { TokenBudget } from '../src/shadow/token-budget.js'
import { LlmCopyPolicy } from '../src/shadow/llm-copy.js'
import { ConfigError, validateConfig } from '../src/index.js'
import { CompareStage } from '../src/compare/compare-stage.js'
import { Metrics } from '../src/metrics/metrics.js'
import { createLogger } from '../src/log/logger.js'
import type { CapturedResponse, CompareJob } from '../src/compare/types.js'
import { Comparator, releasePrimaryCache } from '../src/compare/comparator.js'
import { streamStats } from '../src/compare/llm/stream-timing.js'
import type { JobRecord } from '../src/compare/job-record.js'

const ANSWER = 'The capital of France is Paris.'

/** A resolvable promise: the barrier a test releases. */
function gate (): { promise: Promise<void>, open: () => void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

async function scrape (app: Penumbra): Promise<string> {
  return await (await request(`${urls(app).admin}/metrics`)).body.text()
}

/** Waits until `shadow` has `n` comparisons counted, whatever their outcome. */
async function compared (app: Penumbra, shadow: string, n: number): Promise<string> {
  const outcomes = ['match', 'mismatch', 'shadow_error', 'shadow_timeout', 'unparseable', 'unsupported']
  let text = ''
  await waitFor(async () => {
    text = await scrape(app)
    return outcomes.reduce((a, o) => a + metricValue(text, 'penumbra_comparisons_total', { shadow, outcome: o }), 0) >= n
  }, 10_000, `${n} comparison(s) for ${shadow}`)
  return text
}

function sdk (app: Penumbra): OpenAI {
  return new OpenAI({ baseURL: `${urls(app).proxy}/v1`, apiKey: 'sk-test', maxRetries: 0 })
}

async function chatText (client: OpenAI, extra: Record<string, unknown> = {}): Promise<string> {
  const stream = await client.chat.completions.create({ model: 'm', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Capital of France?' }], ...extra } as OpenAI.ChatCompletionCreateParamsStreaming)
  let text = ''
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? ''
  return text
}

test('the client receives each event before the primary writes the next, with a mirrored shadow', { timeout: 30_000 }, async (t) => {
  const gates = Array.from({ length: 20 }, gate)
  let written = 0
  const primary = await startFakeOpenAI({
    answer: { content: ANSWER },
    beforeEvent: async (i) => { if (i > 0) await gates[i]!.promise; written = i + 1 }
  })
  const shadow = await startFakeOpenAI({ answer: { content: ANSWER } })
  const app = await startPenumbra({ primary: { url: primary.url }, shadows: [{ name: 'cand', url: shadow.url }] })
  t.after(async () => { await app.stop(); await Promise.all([primary.close(), shadow.close()]) })

  const stream = await sdk(app).chat.completions.create({ model: 'm', stream: true, messages: [{ role: 'user', content: 'x' }] })
  let text = ''
  let events = 0
  for await (const chunk of stream) {
    events++
    // The primary wrote exactly the events the client has: nothing is held back by penumbra.
    assert.equal(written, events, `event ${events} reached the client before the primary wrote event ${events + 1}`)
    text += chunk.choices[0]?.delta?.content ?? ''
    gates[events]?.open()
  }
  assert.equal(text, ANSWER)
  const m = await compared(app, 'cand', 1)
  assert.equal(metricValue(m, 'penumbra_comparisons_total', { shadow: 'cand', outcome: 'match' }), 1, 'the captured primary stream compared')
})

test('a slow-streaming shadow does not delay the client; a shadow hanging mid-stream ends at its timeout', { timeout: 30_000 }, async (t) => {
  const primary = await startFakeOpenAI({ answer: { content: ANSWER } })
  const slowGate = gate()
  const slow = await startFakeOpenAI({ answer: { content: ANSWER }, beforeEvent: async (i) => { if (i === 1) await slowGate.promise } })
  const hung = await startFakeOpenAI({ answer: { content: ANSWER }, hangAfter: 3 })
  const app = await startPenumbra({
    primary: { url: primary.url },
    shadows: [
      { name: 'slow', url: slow.url },
      { name: 'hung', url: hung.url, timeoutMs: 300 }
    ]
  })
  t.after(async () => { await app.stop(); await Promise.all([primary.close(), slow.close(), hung.close()]) })

  // The whole answer reaches the client while the slow shadow is stuck at its second event
  // (the gate opens only after) and the hung one has stopped writing.
  assert.equal(await chatText(sdk(app)), ANSWER)
  assert.equal(slow.seen.length, 1, 'the slow shadow got its copy')
  slowGate.open()
  const m = await compared(app, 'slow', 1)
  assert.equal(metricValue(m, 'penumbra_comparisons_total', { shadow: 'slow', outcome: 'match' }), 1)
  const h = await compared(app, 'hung', 1)
  assert.equal(metricValue(h, 'penumbra_shadow_requests_total', { shadow: 'hung', outcome: 'timeout' }), 1, 'the hung stream is a timeout')
  assert.equal(metricValue(h, 'penumbra_comparisons_total', { shadow: 'hung', outcome: 'shadow_timeout' }), 1, 'compared as shadow_timeout')
  assert.equal(metricValue(h, 'penumbra_llm_time_to_first_token_seconds_count', { upstream: 'hung' }), 0)
})

test('stateful calls are not mirrored (reason stateful) unless mirrorStateful opts in, at the top or per shadow', { timeout: 30_000 }, async (t) => {
  const primary = await startFakeOpenAI({ answer: { content: ANSWER } })
  const safe = await startFakeOpenAI({ answer: { content: ANSWER } })
  const optIn = await startFakeOpenAI({ answer: { content: ANSWER } })
  const plain = await startFakeOpenAI({ answer: { content: ANSWER } })
  const app = await startPenumbra({
    primary: { url: primary.url },
    shadows: [
      { name: 'safe', url: safe.url },
      { name: 'optin', url: optIn.url, llm: { mirrorStateful: true } },
      // Not an LLM format: `store` in a tabular model's body means nothing.
      { name: 'plain', url: plain.url, compare: { format: 'json' } }
    ]
  })
  t.after(async () => { await app.stop(); await Promise.all([primary.close(), safe.close(), optIn.close(), plain.close()]) })
  const client = sdk(app)

  assert.equal(await chatText(client, { store: true }), ANSWER)
  const r1 = await client.responses.create({ model: 'm', input: 'again', previous_response_id: 'resp_1' })
  assert.equal(r1.output_text, ANSWER)
  const r2 = await client.responses.create({ model: 'm', input: 'more', conversation: 'conv_1' } as OpenAI.Responses.ResponseCreateParamsNonStreaming)
  assert.equal(r2.status, 'completed')
  assert.equal(await chatText(client, { store: false }), ANSWER, 'store: false is not stateful')

  await compared(app, 'optin', 4)
  await compared(app, 'plain', 4)
  const m = await scrape(app)
  assert.equal(metricValue(m, 'penumbra_shadow_skipped_total', { shadow: 'safe', reason: 'stateful' }), 3)
  assert.equal(safe.seen.length, 1, 'only the stateless call reached the safe shadow')
  assert.equal(metricValue(m, 'penumbra_shadow_skipped_total', { shadow: 'optin', reason: 'stateful' }), 0)
  assert.equal(optIn.seen.length, 4)
  assert.equal(plain.seen.length, 4, 'the LLM rules apply to LLM formats only')

  // The top-level key is the default of every shadow.
  const app2 = await startPenumbra({ primary: { url: primary.url }, llm: { mirrorStateful: true }, shadows: [{ name: 'safe', url: safe.url }] })
  t.after(() => app2.stop())
  assert.equal(await chatText(sdk(app2), { store: true }), ANSWER)
  await compared(app2, 'safe', 1)
  assert.equal(safe.seen.length, 2)
})

test('a per-shadow token budget: once the minute\'s tokens are spent, copies are skipped (reason budget); the report shows it', { timeout: 30_000 }, async (t) => {
  const primary = await startFakeOpenAI({ answer: { content: ANSWER } })
  // 12 input + 10 output tokens per answer: the first answer spends the whole budget of 20.
  const shadow = await startFakeOpenAI({ answer: { content: ANSWER, usage: { input: 12, output: 10 } } })
  const app = await startPenumbra({ primary: { url: primary.url }, shadows: [{ name: 'cand', url: shadow.url, llm: { maxTokensPerMinute: 20 } }] })
  t.after(async () => { await app.stop(); await Promise.all([primary.close(), shadow.close()]) })
  const client = sdk(app)
  // Sequentially, each one's answer counted before the next: three requests within a few hundred
  // ms can cross at most one minute boundary, so at least one is skipped.
  for (let i = 0; i < 3; i++) {
    assert.equal(await chatText(client), ANSWER, 'the client is served whatever the budget')
    const seen = shadow.seen.length
    if (seen > 0) await compared(app, 'cand', seen)
  }
  const m = await scrape(app)
  const skipped = metricValue(m, 'penumbra_shadow_skipped_total', { shadow: 'cand', reason: 'budget' })
  assert.ok(skipped >= 1, `skipped ${skipped}`)
  assert.equal(shadow.seen.length + skipped, 3)
  const report = await (await request(`${urls(app).admin}/report`)).body.json() as { shadows: Array<{ skipped: Record<string, number>, llm: { settings: { budget: { tokensPerMinute: number, spentThisMinute: number } } } }> }
  assert.equal(report.shadows[0]!.skipped.budget, skipped)
  assert.equal(report.shadows[0]!.llm.settings.budget.tokensPerMinute, 20)
  assert.ok(report.shadows[0]!.llm.settings.budget.spentThisMinute >= 22)
})

test('stream: off sends the copy non-streamed (no stream_options); it compares against the streamed primary; TTFT not measured for it', { timeout: 30_000 }, async (t) => {
  const primary = await startFakeOpenAI({ answer: { content: ANSWER } })
  const shadow = await startFakeOpenAI({ answer: { content: ANSWER } })
  const app = await startPenumbra({ primary: { url: primary.url }, shadows: [{ name: 'cand', url: shadow.url, llm: { stream: 'off' } }] })
  t.after(async () => { await app.stop(); await Promise.all([primary.close(), shadow.close()]) })
  assert.equal(await chatText(sdk(app)), ANSWER)
  const m = await compared(app, 'cand', 1)
  const body = JSON.parse(shadow.seen[0]!.body.toString('utf8')) as Record<string, unknown>
  assert.equal(body.stream, false)
  assert.equal('stream_options' in body, false)
  assert.deepEqual(body.messages, [{ role: 'user', content: 'Capital of France?' }], 'the rest of the body unchanged')
  assert.equal(JSON.parse(primary.seen[0]!.body.toString('utf8')).stream, true, 'the primary got the client\'s request')
  assert.equal(metricValue(m, 'penumbra_comparisons_total', { shadow: 'cand', outcome: 'match' }), 1)
  assert.equal(metricValue(m, 'penumbra_llm_time_to_first_token_seconds_count', { upstream: 'primary' }), 1)
  assert.equal(metricValue(m, 'penumbra_llm_time_to_first_token_seconds_count', { upstream: 'cand' }), 0)
  const report = await (await request(`${urls(app).admin}/report`)).body.json() as { shadows: Array<{ llm: { timeToFirstTokenMs: { note: string | null, samples: number } } }> }
  assert.match(report.shadows[0]!.llm.timeToFirstTokenMs.note ?? '', /stream is off/)
  assert.equal(report.shadows[0]!.llm.timeToFirstTokenMs.samples, 0)
})

test('usage missing: tokens counted kind="unknown", never estimated; the report has the kinds with intervals and TTFT side by side', { timeout: 30_000 }, async (t) => {
  const primary = await startFakeOpenAI({ answer: { content: ANSWER, usage: null } })
  const shadow = await startFakeOpenAI({ answer: { content: 'Paris is the capital city of France, famously.', usage: null } })
  const app = await startPenumbra({ primary: { url: primary.url }, shadows: [{ name: 'cand', url: shadow.url }] })
  t.after(async () => { await app.stop(); await Promise.all([primary.close(), shadow.close()]) })
  await chatText(sdk(app))
  await chatText(sdk(app))
  const m = await compared(app, 'cand', 2)
  for (const upstream of ['primary', 'cand']) {
    assert.equal(metricValue(m, 'penumbra_llm_tokens_total', { upstream, kind: 'unknown' }), 2, upstream)
    assert.equal(metricValue(m, 'penumbra_llm_tokens_total', { upstream, kind: 'output' }), 0, upstream)
  }
  const report = await (await request(`${urls(app).admin}/report`)).body.json() as { shadows: Array<{ llm: Record<string, any> }> }
  const llm = report.shadows[0]!.llm
  assert.equal(llm.agreement.content.disagree, 2)
  assert.equal(llm.agreement.content.compared, 2)
  assert.ok(llm.agreement.content.lower > 0 && llm.agreement.content.upper === 1, 'Wilson interval')
  assert.equal(llm.agreement.finish_reason.agree, 2)
  assert.equal(llm.timeToFirstTokenMs.samples, 2)
  assert.ok(llm.timeToFirstTokenMs.primary.p50 > 0 && llm.timeToFirstTokenMs.shadow.p99 > 0)
  assert.equal(llm.tokensPerAnswer.primary.input, null, 'no usage: no average')
  assert.equal(llm.tokensPerAnswer.shadow.answersWithoutUsage, 2)
})

test('TokenBudget rolls over with the minute; LlmCopyPolicy only parses bodies that name its keys', () => {
  const b = new TokenBudget(10)
  const t0 = 60_000 * 1000
  assert.equal(b.exhausted(t0), false)
  b.spend(7, t0 + 1)
  assert.equal(b.exhausted(t0 + 2), false)
  b.spend(3, t0 + 3)
  assert.equal(b.exhausted(t0 + 59_999), true)
  assert.equal(b.exhausted(t0 + 60_000), false, 'a new minute')
  assert.equal(b.spent(t0 + 60_001), 0)

  const p = new LlmCopyPolicy({ maxTokensPerMinute: null, stream: 'off' }, false, 'auto')
  assert.equal(p.applies('/v1/chat/completions'), true)
  assert.equal(p.applies('/v1/models/predict'), false)
  assert.equal(p.stateful(Buffer.from('{"store":true}')), true)
  assert.equal(p.stateful(Buffer.from('{"store":false,"previous_response_id":null}')), false)
  assert.equal(p.stateful(Buffer.from('{"messages":[{"content":"\\"store\\": true"}]}')), false, 'a key in the content is not the key')
  assert.equal(p.stateful(Buffer.from('not json "store"')), false)
  const same = Buffer.from('{"messages":[]}')
  assert.equal(p.copy(same), same, 'unchanged without a stream key')
  assert.deepEqual(JSON.parse(p.copy(Buffer.from('{"stream":true,"stream_options":{"include_usage":true},"n":1}')).toString()), { stream: false, n: 1 })
})

test('the LLM keys are validated with their key paths; defaults as documented', () => {
  try {
    validateConfig({ primary: { url: 'http://127.0.0.1:1' }, llm: { mirrorStatefull: true }, shadows: [{ name: 'a', url: 'http://127.0.0.1:2', llm: { stream: 'no', maxTokensPerMinute: 0 } }] })
    assert.fail('expected the config to be invalid')
  } catch (err) {
    assert.ok(err instanceof ConfigError)
    assert.deepEqual(err.problems.sort(), [
      'llm.mirrorStatefull: unknown key (did you mean `mirrorStateful`?)',
      'shadows[0].llm.maxTokensPerMinute: must be >= 1',
      'shadows[0].llm.stream: Invalid option: expected one of "keep"|"off"'
    ])
  }
  const c = validateConfig({ primary: { url: 'http://127.0.0.1:1' }, shadows: [{ name: 'a', url: 'http://127.0.0.1:2' }] })
  assert.deepEqual(c.llm, { mirrorStateful: false })
  assert.deepEqual(c.shadows[0]!.llm, { maxTokensPerMinute: null, stream: 'keep' })
})

test('a job dropped by a full comparison queue still spends the shadow\'s reported tokens on its budget', async () => {
  const config = testConfig({ primary: { url: 'http://127.0.0.1:1' }, compare: { maxPending: 1 }, shadows: [{ name: 'cand', url: 'http://127.0.0.1:2', llm: { maxTokensPerMinute: 1000 } }] })
  const stage = new CompareStage(config, new Metrics({ version: 't', defaultMetrics: false }), createLogger({ level: 'silent' }))
  const budget = new TokenBudget(1000)
  const answer = (): CapturedResponse => {
    const body = Buffer.from(JSON.stringify({ object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }], usage: { prompt_tokens: 7, completion_tokens: 3 } }))
    return { status: 200, headers: { 'content-type': 'application/json' }, body, truncated: false, durationMs: 1 }
  }
  const job = (): JobRecord => ({
    requestId: 'r',
    method: 'POST',
    url: '/v1/chat/completions',
    requestHeaders: {},
    requestBody: Buffer.from('{}'),
    backend: 'primary',
    primary: { response: answer(), error: null },
    targets: [{ kind: 'shadow', name: 'cand', compare: config.compare, result: { outcome: 'ok', response: answer(), reason: null, durationMs: 1 }, budget }],
    bytes: 0
  })
  stage.consume(job())
  stage.consume(job()) // the queue holds one: dropped (queue_full), its 10 tokens spent anyway
  assert.equal(stage.report('cand').dropped.queue_full, 1)
  assert.equal(budget.spent(), 10)
  await stage.close()
  assert.equal(budget.spent(), 20, 'and the compared one')
})

test('a stream assembled for its timing is not assembled again by the comparator: same results as assembling it there', { timeout: 30_000 }, async (t) => {
  const fake = await startFakeOpenAI({ answer: { content: 'Sunny, 21 degrees.' } })
  t.after(() => fake.close())
  const capture = async (path: string, body: object, answer: Parameters<typeof startFakeOpenAI>[0]): Promise<CapturedResponse> => {
    fake.behaviour = answer!
    const res = await request(`${fake.url}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
    const bytes = Buffer.from(await res.body.arrayBuffer())
    return { status: res.statusCode, headers: res.headers, body: bytes, truncated: false, durationMs: 5, arrivals: [0, 1] }
  }
  const tools = [{ name: 'get_weather', arguments: '{"city":"Paris","unit":"c"}' }]
  const cases: Array<[string, object, NonNullable<Parameters<typeof startFakeOpenAI>[0]>, NonNullable<Parameters<typeof startFakeOpenAI>[0]>]> = [
    ['/v1/chat/completions', { stream: true, stream_options: { include_usage: true } }, { answer: { content: 'Sunny, 21 degrees.' } }, { answer: { content: 'Rainy, 12 degrees today.' } }],
    ['/v1/chat/completions', { stream: true }, { answer: { content: null, toolCalls: tools } }, { answer: { content: null, toolCalls: [{ name: 'get_weather', arguments: '{"unit":"f","city":"Paris"}' }] } }],
    ['/v1/responses', { stream: true }, { answer: { content: 'Hello.' } }, { answer: { content: 'Hello.', finishReason: 'length' } }]
  ]
  const comparator = new Comparator(testConfig({ primary: { url: 'http://127.0.0.1:1' } }).compare)
  for (const [path, body, pa, sa] of cases) {
    const p = await capture(path, body, pa)
    const s = await capture(path, body, sa)
    // The same bytes each time, in fresh objects.
    const job = async (): Promise<CompareJob> => ({ shadow: 's', requestId: 'r', method: 'POST', url: path, requestHeaders: {}, requestBody: Buffer.from(JSON.stringify(body)), primary: { ...p, body: Buffer.from(p.body) }, shadowResponse: { ...s, body: Buffer.from(s.body) } })
    const plain = await job()
    const expected = comparator.compare(plain)
    releasePrimaryCache()
    const timed = await job()
    assert.ok(streamStats(timed.primary, 1 << 24) !== null && streamStats(timed.shadowResponse, 1 << 24) !== null)
    assert.ok(timed.primary.assembled !== undefined && timed.shadowResponse.assembled !== undefined, 'kept')
    const got = comparator.compare(timed)
    releasePrimaryCache()
    assert.deepEqual(got, expected, path)
  }
  // And it is what the comparator uses: a doctored assembly (two captures of the same answer) shows it.
  const [path, body, pa] = cases[0]!
  const doctored: CompareJob = { shadow: 's', requestId: 'r', method: 'POST', url: path, requestHeaders: {}, requestBody: null, primary: await capture(path, body, pa), shadowResponse: await capture(path, body, pa) }
  streamStats(doctored.shadowResponse, 1 << 24)
  ;(doctored.shadowResponse.assembled!.body as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content = 'something else entirely, not at all similar'
  assert.equal(comparator.compare(doctored).outcome, 'mismatch')
  releasePrimaryCache()
})
