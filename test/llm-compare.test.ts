import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Comparator } from '../src/compare/comparator.js'
import { resolveFormat } from '../src/compare/formats/index.js'
import { compareSchema } from '../src/config/schema.js'
import { Metrics } from '../src/metrics/metrics.js'
import type { CapturedResponse, CompareResult } from '../src/compare/types.js'
import { makeJob } from './fixtures/compare.js'
import { startFakeOpenAI, type FakeAnswer, type FakeBehaviour, type FakeOpenAI } from './helpers/fake-openai.js'

/** One real exchange with the fake server, captured as the proxy would. */
async function capture (fake: FakeOpenAI, path: string, request: object, behaviour: FakeBehaviour): Promise<CapturedResponse> {
  fake.behaviour = behaviour
  const res = await fetch(`${fake.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) })
  let body: Buffer
  try {
    body = Buffer.from(await res.arrayBuffer())
  } catch {
    body = Buffer.alloc(0)
  }
  const headers: Record<string, string> = {}
  res.headers.forEach((v, k) => { headers[k] = v })
  return { status: res.status, headers, body, truncated: false, durationMs: 1 }
}

interface Side { answer: FakeAnswer, stream: boolean, cutAfter?: number }

async function compare (fake: FakeOpenAI, path: string, request: Record<string, unknown>, p: Side, s: Side, over: object = {}): Promise<CompareResult> {
  const primary = await capture(fake, path, { ...request, stream: p.stream }, { answer: p.answer, cutAfter: p.cutAfter })
  const shadow = await capture(fake, path, { ...request, stream: s.stream }, { answer: s.answer, cutAfter: s.cutAfter })
  const job = makeJob({ url: path, primary, shadow, requestBody: Buffer.from(JSON.stringify(request)), requestHeaders: { 'content-type': 'application/json' } })
  return new Comparator(compareSchema.parse(over)).compare(job)
}

const CHAT = '/v1/chat/completions'
const MSG = { model: 'm', messages: [{ role: 'user', content: 'hi' }] }
const weather = (args: string): FakeAnswer => ({ content: null, toolCalls: [{ name: 'get_weather', arguments: args }] })

test('a streamed primary compares against a non-streamed shadow (and back): same answer, match on every kind', async (t) => {
  const fake = await startFakeOpenAI()
  t.after(() => fake.close())
  const answer: FakeAnswer = { content: 'Paris is the capital of France.' }
  const r = await compare(fake, CHAT, MSG, { answer, stream: true }, { answer, stream: false })
  assert.equal(r.format, 'openai-chat')
  assert.equal(r.outcome, 'match', JSON.stringify(r.differences))
  assert.deepEqual(r.instances, { compared: 1, disagreements: 0, scoreDeltas: [] })
  assert.deepEqual(r.llm?.kinds, { content: { agree: 1, disagree: 0 }, finish_reason: { agree: 1, disagree: 0 }, refusal: { agree: 1, disagree: 0 } })
  assert.equal(r.llm?.primary.streamed, true)
  assert.equal(r.llm?.shadow.streamed, false)
  assert.deepEqual(r.llm?.shadow.usage, { input_tokens: 12, output_tokens: 8 })
  assert.equal(r.llm?.primary.usage, null, 'a stream without include_usage reports none')
  const back = await compare(fake, CHAT, MSG, { answer, stream: false }, { answer: { content: 'Paris is the capital of France!' }, stream: true })
  assert.equal(back.outcome, 'match')
})

test('content: similar text agrees, a different answer disagrees at /choices/0/message/content', async (t) => {
  const fake = await startFakeOpenAI()
  t.after(() => fake.close())
  const r = await compare(fake, CHAT, MSG, { answer: { content: 'Paris.' }, stream: true }, { answer: { content: 'I am not sure, maybe Lyon?' }, stream: true })
  assert.equal(r.outcome, 'mismatch')
  assert.deepEqual(r.differences.map((d) => d.path), ['/choices/0/message/content'])
  assert.deepEqual(r.llm?.kinds.content, { agree: 0, disagree: 1 })
  assert.deepEqual(r.llm?.kinds.finish_reason, { agree: 1, disagree: 0 })
})

test('tool_calls: JSON-equal arguments (key order, whitespace) agree, call order and ids do not matter; numeric tolerance applies; another function or value disagrees', async (t) => {
  const fake = await startFakeOpenAI()
  t.after(() => fake.close())
  const two = (a: string, b: string): FakeAnswer => ({ content: null, toolCalls: [{ name: 'get_weather', arguments: a }, { name: 'get_time', arguments: b }] })
  const same = await compare(fake, CHAT, MSG,
    { answer: two('{"city":"Paris","days":3}', '{"tz":"CET"}'), stream: true },
    { answer: { content: null, toolCalls: [{ name: 'get_time', arguments: '{ "tz" : "CET" }' }, { name: 'get_weather', arguments: '{\n "days": 3.0000000001, "city": "Paris"\n}' }] }, stream: false })
  assert.equal(same.outcome, 'match', JSON.stringify(same.differences))
  assert.deepEqual(same.llm?.kinds.tool_calls, { agree: 1, disagree: 0 })
  assert.equal(same.llm?.kinds.content, undefined, 'no text on either side: content does not apply')

  const value = await compare(fake, CHAT, MSG, { answer: weather('{"city":"Paris"}'), stream: true }, { answer: weather('{"city":"Lyon"}'), stream: true })
  assert.deepEqual(value.llm?.kinds.tool_calls, { agree: 0, disagree: 1 })
  assert.deepEqual(value.differences.map((d) => d.path), ['/choices/0/message/tool_calls/0/function/arguments/city'])

  const name = await compare(fake, CHAT, MSG, { answer: weather('{}'), stream: true }, { answer: { content: null, toolCalls: [{ name: 'get_time', arguments: '{}' }] }, stream: true })
  assert.deepEqual(name.llm?.kinds.tool_calls, { agree: 0, disagree: 1 })

  const tol = await compare(fake, CHAT, MSG, { answer: weather('{"lat":48.85}'), stream: true }, { answer: weather('{"lat":48.86}'), stream: true },
    { paths: { '/choices/*/message/tool_calls/*/function/arguments/lat': { numeric: { absTol: 0.05 } } } })
  assert.equal(tol.outcome, 'match')

  const vsText = await compare(fake, CHAT, MSG, { answer: weather('{}'), stream: true }, { answer: { content: 'It is sunny.' }, stream: true })
  assert.deepEqual([vsText.llm?.kinds.tool_calls, vsText.llm?.kinds.content, vsText.llm?.kinds.finish_reason],
    [{ agree: 0, disagree: 1 }, { agree: 0, disagree: 1 }, { agree: 0, disagree: 1 }])
})

test('finish_reason: a stop that became length is a disagreement', async (t) => {
  const fake = await startFakeOpenAI()
  t.after(() => fake.close())
  const r = await compare(fake, CHAT, MSG, { answer: { content: 'A short story.' }, stream: true }, { answer: { content: 'A short story.', finishReason: 'length' }, stream: true })
  assert.deepEqual(r.llm?.kinds.finish_reason, { agree: 0, disagree: 1 })
  assert.deepEqual(r.llm?.kinds.content, { agree: 1, disagree: 0 })
  assert.deepEqual(r.differences.map((d) => d.path), ['/choices/0/finish_reason'])
})

test('refusal: refused on one side only disagrees; two refusals in other words agree', async (t) => {
  const fake = await startFakeOpenAI()
  t.after(() => fake.close())
  const one = await compare(fake, CHAT, MSG, { answer: { content: 'Sure, here it is.' }, stream: true }, { answer: { content: null, refusal: 'I cannot help with that.' }, stream: true })
  assert.deepEqual(one.llm?.kinds.refusal, { agree: 0, disagree: 1 })
  const both = await compare(fake, CHAT, MSG, { answer: { content: null, refusal: 'I cannot help with that.' }, stream: true }, { answer: { content: null, refusal: 'Sorry, I will not do this.' }, stream: false })
  assert.deepEqual(both.llm?.kinds.refusal, { agree: 1, disagree: 0 })
  assert.equal(both.outcome, 'match', JSON.stringify(both.differences))
})

test('json_valid: with response_format json_schema each answer is checked against the schema (ajv)', async (t) => {
  const fake = await startFakeOpenAI()
  t.after(() => fake.close())
  const schema = { type: 'object', properties: { city: { type: 'string' }, temp: { type: 'number' } }, required: ['city', 'temp'], additionalProperties: false }
  const req = { ...MSG, response_format: { type: 'json_schema', json_schema: { name: 'w', strict: true, schema } } }
  const ok = await compare(fake, CHAT, req, { answer: { content: '{"city":"Paris","temp":21}' }, stream: true }, { answer: { content: '{"temp": 21, "city": "Paris"}' }, stream: false })
  assert.deepEqual(ok.llm?.kinds.json_valid, { agree: 1, disagree: 0 })
  const bad = await compare(fake, CHAT, req, { answer: { content: '{"city":"Paris","temp":21}' }, stream: true }, { answer: { content: '{"city":"Paris","temp":"warm"}' }, stream: true })
  assert.deepEqual(bad.llm?.kinds.json_valid, { agree: 0, disagree: 1 })
  assert.ok(bad.differences.some((d) => d.path === '/choices/0/json_valid' && d.primary === true && d.shadow === false))
  const notJson = await compare(fake, CHAT, { ...MSG, response_format: { type: 'json_object' } }, { answer: { content: '{"a":1}' }, stream: true }, { answer: { content: 'Here is {"a":1}' }, stream: true })
  assert.deepEqual(notJson.llm?.kinds.json_valid, { agree: 0, disagree: 1 })
  const free = await compare(fake, CHAT, MSG, { answer: { content: '{"a":1}' }, stream: true }, { answer: { content: 'x' }, stream: true })
  assert.equal(free.llm?.kinds.json_valid, undefined, 'no response_format: json_valid does not apply')
})

test('a truncated shadow stream is unparseable with streamTruncated "shadow"; a truncated primary "primary"', async (t) => {
  const fake = await startFakeOpenAI()
  t.after(() => fake.close())
  const answer: FakeAnswer = { content: 'a fairly long answer that gets cut' }
  const s = await compare(fake, CHAT, MSG, { answer, stream: true }, { answer, stream: true, cutAfter: 3 })
  assert.deepEqual([s.outcome, s.reason, s.streamTruncated], ['unparseable', 'shadow: stream truncated', 'shadow'])
  const p = await compare(fake, CHAT, MSG, { answer, stream: true, cutAfter: 3 }, { answer, stream: false })
  assert.deepEqual([p.outcome, p.reason, p.streamTruncated], ['unparseable', 'primary: stream truncated', 'primary'])
})

test('completions and responses: detected by path and body, streamed vs not compared alike', async (t) => {
  const fake = await startFakeOpenAI()
  t.after(() => fake.close())
  const c = await compare(fake, '/v1/completions', { model: 'm', prompt: 'x' }, { answer: { content: ' once upon a time' }, stream: true }, { answer: { content: ' Once upon a time' }, stream: false })
  assert.equal(c.format, 'openai-completions')
  assert.equal(c.outcome, 'match', JSON.stringify(c.differences))
  assert.deepEqual(c.llm?.kinds.content, { agree: 1, disagree: 0 })
  assert.equal(c.llm?.kinds.refusal, undefined)
  const asChat = await compare(fake, '/v1/completions', { model: 'm', prompt: 'x' }, { answer: { content: 'yes' }, stream: false }, { answer: { content: 'no, never' }, stream: false }, { format: 'openai-chat' })
  assert.deepEqual(asChat.llm?.kinds.content, { agree: 0, disagree: 1 }, 'format openai-chat still compares a completions text')

  const answer: FakeAnswer = { content: 'Let me check.', toolCalls: [{ name: 'get_weather', arguments: '{"city":"Paris"}' }] }
  const r = await compare(fake, '/v1/responses', { model: 'm', input: 'x' }, { answer, stream: true }, { answer, stream: false })
  assert.equal(r.format, 'openai-responses')
  assert.equal(r.outcome, 'match', JSON.stringify(r.differences))
  assert.deepEqual(Object.keys(r.llm?.kinds ?? {}).sort(), ['content', 'finish_reason', 'refusal', 'tool_calls'])
  assert.deepEqual(r.llm?.primary.usage, { input_tokens: 12, output_tokens: 4 })
  const len = await compare(fake, '/v1/responses', { model: 'm', input: 'x' }, { answer, stream: true }, { answer: { ...answer, toolCalls: [], finishReason: 'length' }, stream: true })
  assert.deepEqual(len.llm?.kinds.finish_reason, { agree: 0, disagree: 1 })

  assert.equal(resolveFormat('auto', '/v1/chat/completions', {}, undefined).name, 'openai-chat')
  assert.equal(resolveFormat('auto', '/v1/completions', {}, undefined).name, 'openai-completions')
  assert.equal(resolveFormat('auto', '/x', { object: 'response', output: [] }, undefined).name, 'openai-responses')
  assert.equal(resolveFormat('auto', '/x', { object: 'text_completion', choices: [] }, undefined).name, 'openai-completions')
})

test('penumbra_llm_agreement_total counts each kind by outcome', async (t) => {
  const fake = await startFakeOpenAI()
  t.after(() => fake.close())
  const r = await compare(fake, CHAT, MSG, { answer: { content: 'A short story.' }, stream: true }, { answer: { content: 'A short story.', finishReason: 'length' }, stream: false })
  const m = new Metrics({ version: 'test', defaultMetrics: false })
  m.recordLlmAgreement('cand', r.llm!)
  const text = await m.registry.metrics()
  assert.match(text, /penumbra_llm_agreement_total\{shadow="cand",kind="finish_reason",outcome="disagree"\} 1/)
  assert.match(text, /penumbra_llm_agreement_total\{shadow="cand",kind="content",outcome="agree"\} 1/)
})
