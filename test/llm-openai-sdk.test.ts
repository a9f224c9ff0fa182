import { test } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'
import { normaliseAnswer, type LlmAnswer, type LlmApi } from '../src/compare/llm/answer.js'
import { createAssembler } from '../src/compare/llm/assemble.js'
import type { AssembleResult, SseAssembler } from '../src/compare/llm/sse-assembler.js'
import { startFakeOpenAI, type FakeAnswer, type FakeOpenAI } from './helpers/fake-openai.js'

/**
 * The official `openai` SDK as the client, directly against the fake server: the fake speaks the
 * protocol the SDK expects, and the assembler, fed the very bytes the SDK read (a teeing `fetch`),
 * reproduces the answer the SDK's own stream helpers assemble.
 */

interface Tap {
  client: OpenAI
  /** The assembled result of each streamed response the client read, in order. */
  results: Array<Promise<AssembleResult>>
}

function tap (fake: FakeOpenAI, api: LlmApi | 'auto' = 'auto'): Tap {
  const results: Array<Promise<AssembleResult>> = []
  const teeFetch: typeof fetch = async (input, init) => {
    const res = await fetch(input, init)
    if (res.body === null || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) return res
    const [mine, theirs] = res.body.tee()
    const a: SseAssembler = createAssembler(api)
    results.push((async () => {
      try {
        for await (const chunk of mine as unknown as AsyncIterable<Uint8Array>) a.feed(chunk)
      } catch {
        // The client aborted or the connection reset: what arrived is all there is.
      }
      return a.finish()
    })())
    return new Response(theirs, { status: res.status, statusText: res.statusText, headers: res.headers })
  }
  const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${fake.url}/v1`, fetch: teeFetch, maxRetries: 0, timeout: 5000 })
  return { client, results }
}

function assembled (r: AssembleResult, api: LlmApi): LlmAnswer {
  assert.equal(r.ok, true, JSON.stringify(r))
  if (!r.ok) throw new Error('unreachable')
  assert.equal(r.api, api)
  const a = normaliseAnswer(api, r.body)
  assert.ok(a !== null)
  return a
}

function normalised (api: LlmApi, body: unknown): LlmAnswer {
  const a = normaliseAnswer(api, body)
  assert.ok(a !== null, `not a ${api} answer: ${JSON.stringify(body)}`)
  return a
}

/** The answer without what changes per call (ids, timestamps) and usage (a stream reports it only with include_usage): what a streamed and a non-streamed call share. */
function stable (a: LlmAnswer): unknown {
  return { ...a, id: null, created: null, usage: null, choices: a.choices.map((c) => c.message === undefined ? c : { ...c, message: { ...c.message, tool_calls: c.message.tool_calls.map((t) => ({ ...t, id: null })) } }) }
}

const TOOLS: FakeAnswer = {
  content: null,
  toolCalls: [
    { name: 'get_weather', arguments: '{"city": "Paris", "units": "celsius", "days": 3}' },
    { name: 'get_time', arguments: '{"tz":"Europe/Paris"}' }
  ]
}

test('chat: SDK finalChatCompletion() of a streamed answer (text, include_usage) equals the assembled answer; TTFT is recorded', async (t) => {
  const fake = await startFakeOpenAI({ answer: { content: 'The capital of France is Paris — café au lait ☕.', usage: { input: 21, output: 13 } } })
  t.after(() => fake.close())
  const { client, results } = tap(fake)
  const stream = client.chat.completions.stream({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream_options: { include_usage: true } })
  const sdk = await stream.finalChatCompletion()
  const r = await results[0]!
  const mine = assembled(r, 'chat')
  assert.deepEqual(mine, normalised('chat', sdk))
  assert.equal(mine.choices[0]!.message!.content, 'The capital of France is Paris — café au lait ☕.')
  assert.deepEqual(mine.usage, { input_tokens: 21, output_tokens: 13 })
  assert.equal(mine.choices[0]!.finish_reason, 'stop')
  assert.ok(r.timing.firstTokenMs !== null && r.timing.firstTokenMs >= 0)
  assert.ok(r.timing.tokenEvents > 1)
})

test('chat: streamed tool calls merged by index match the SDK, and the non-streamed answer of the same request', async (t) => {
  const fake = await startFakeOpenAI({ answer: TOOLS })
  t.after(() => fake.close())
  const { client, results } = tap(fake)
  const params = { model: 'm', messages: [{ role: 'user' as const, content: 'weather?' }] }
  const sdk = await client.chat.completions.stream(params).finalChatCompletion()
  const mine = assembled(await results[0]!, 'chat')
  assert.deepEqual(mine, normalised('chat', sdk))
  assert.deepEqual(mine.choices[0]!.message!.tool_calls.map((c) => [c.function.name, c.function.arguments]), [
    ['get_time', { tz: 'Europe/Paris' }],
    ['get_weather', { city: 'Paris', units: 'celsius', days: 3 }]
  ])
  assert.equal(mine.choices[0]!.finish_reason, 'tool_calls')
  const plain = await client.chat.completions.create(params)
  assert.deepEqual(stable(normalised('chat', plain)), stable(mine))
})

test('chat: a refusal streams and assembles like the SDK', async (t) => {
  const fake = await startFakeOpenAI({ answer: { content: null, refusal: 'I cannot help with that request.' } })
  t.after(() => fake.close())
  const { client, results } = tap(fake)
  const sdk = await client.chat.completions.stream({ model: 'm', messages: [{ role: 'user', content: 'x' }] }).finalChatCompletion()
  const mine = assembled(await results[0]!, 'chat')
  assert.deepEqual(mine, normalised('chat', sdk))
  assert.equal(mine.choices[0]!.message!.refusal, 'I cannot help with that request.')
})

test('chat: raw chunks through the SDK iterator concatenate to the assembled content', async (t) => {
  const fake = await startFakeOpenAI({ answer: { content: 'one two three four five six', pieceChars: 3 } })
  t.after(() => fake.close())
  const { client, results } = tap(fake)
  const chunks = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'count' }], stream: true })
  let text = ''
  for await (const c of chunks) text += c.choices[0]?.delta.content ?? ''
  assert.equal(assembled(await results[0]!, 'chat').choices[0]!.message!.content, text)
})

test('completions: streamed text chunks as the SDK iterates them equal the assembled text; non-streamed agrees', async (t) => {
  const fake = await startFakeOpenAI({ answer: { content: ' once upon a time there was', usage: { input: 5, output: 7 } } })
  t.after(() => fake.close())
  const { client, results } = tap(fake)
  const chunks = await client.completions.create({ model: 'm', prompt: 'tell', stream: true, stream_options: { include_usage: true } })
  let text = ''
  let finish: string | null = null
  for await (const c of chunks) {
    text += c.choices[0]?.text ?? ''
    finish = c.choices[0]?.finish_reason ?? finish
  }
  const mine = assembled(await results[0]!, 'completions')
  assert.equal(mine.choices[0]!.text, text)
  assert.equal(mine.choices[0]!.finish_reason, finish)
  assert.deepEqual(mine.usage, { input_tokens: 5, output_tokens: 7 })
  const plain = await client.completions.create({ model: 'm', prompt: 'tell' })
  assert.deepEqual(stable(normalised('completions', plain)), stable(mine))
})

test('responses: SDK finalResponse() of a stream with text and function calls equals the assembled answer', async (t) => {
  const fake = await startFakeOpenAI({ answer: { content: 'Checking the weather.', toolCalls: TOOLS.toolCalls, usage: { input: 30, output: 9 } } })
  t.after(() => fake.close())
  const { client, results } = tap(fake)
  const sdk = await client.responses.stream({ model: 'm', input: 'weather in Paris?' }).finalResponse()
  const r = await results[0]!
  const mine = assembled(r, 'responses')
  assert.deepEqual(mine, normalised('responses', sdk))
  assert.equal(mine.choices[0]!.message!.content, 'Checking the weather.')
  assert.equal(mine.choices[0]!.message!.tool_calls.length, 2)
  assert.deepEqual(mine.usage, { input_tokens: 30, output_tokens: 9 })
  assert.ok(r.timing.firstTokenMs !== null)
  const plain = await client.responses.create({ model: 'm', input: 'weather in Paris?' })
  assert.deepEqual(stable(normalised('responses', plain)), stable(mine))
})

test('responses: an incomplete answer (max_output_tokens) assembles with finish_reason length', async (t) => {
  const fake = await startFakeOpenAI({ answer: { content: 'A long story that', finishReason: 'length' } })
  t.after(() => fake.close())
  const { client, results } = tap(fake)
  const sdk = await client.responses.stream({ model: 'm', input: 'story' }).finalResponse()
  const mine = assembled(await results[0]!, 'responses')
  assert.deepEqual(mine, normalised('responses', sdk))
  assert.equal(mine.choices[0]!.finish_reason, 'length')
})

test('a stream cut off mid-answer: the SDK ends early without an error, the assembler says truncated', async (t) => {
  const fake = await startFakeOpenAI({ answer: { content: 'this answer will never finish' }, cutAfter: 4, cutMode: 'end' })
  t.after(() => fake.close())
  const { client, results } = tap(fake)
  const chunks = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true })
  let text = ''
  for await (const c of chunks) text += c.choices[0]?.delta.content ?? ''
  assert.equal(text, 'this answer ', 'the SDK got the first three content deltas only')
  const r = await results[0]!
  assert.equal(r.ok, false)
  assert.equal(!r.ok && r.reason, 'truncated')

  fake.behaviour = { answer: {}, cutAfter: 3, cutMode: 'end' }
  // The SDK hands back its last snapshot, still in progress: only the missing terminal event tells.
  const partial = await client.responses.stream({ model: 'm', input: 'x' }).finalResponse()
  assert.equal(partial.status, 'in_progress')
  const rr = await results[1]!
  assert.equal(!rr.ok && rr.reason, 'truncated')
})

test('the fake streams event by event: the SDK client sees the first chunk before the server writes the second (barrier); a hung stream stays open', async (t) => {
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  const fake = await startFakeOpenAI({ answer: { content: 'abcdefgh' }, beforeEvent: async (i) => { if (i === 2) await gate } })
  t.after(() => fake.close())
  const { client, results } = tap(fake)
  const chunks = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true })
  const it = chunks[Symbol.asyncIterator]()
  const first = await it.next()
  const second = await it.next()
  assert.equal(first.done, false)
  assert.equal(second.value?.choices[0]?.delta.content, 'abcd', 'the first content chunk arrived while the server waits at the barrier')
  release()
  let rest = ''
  for (let r = await it.next(); r.done !== true; r = await it.next()) rest += r.value.choices[0]?.delta.content ?? ''
  assert.equal(rest, 'efgh')

  fake.behaviour = { answer: {}, hangAfter: 2 }
  const ac = new AbortController()
  const hung = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true }, { signal: ac.signal })
  const hi = hung[Symbol.asyncIterator]()
  assert.equal((await hi.next()).done, false)
  assert.equal((await hi.next()).done, false)
  const third = hi.next()
  ac.abort()
  assert.equal((await third).done, true, 'the SDK ends the iteration on abort')
  const r = await results[1]!
  assert.equal(!r.ok && r.reason, 'truncated')
})
