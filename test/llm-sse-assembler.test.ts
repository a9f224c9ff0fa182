import { test } from 'node:test'
import assert from 'node:assert/strict'
import { assembleBytes, createAssembler } from '../src/compare/llm/assemble.js'
import { timePerOutputTokenMs } from '../src/compare/llm/sse-assembler.js'

const sse = (events: Array<object | string>, named = false): string => events.map((e) => {
  if (typeof e === 'string') return `data: ${e}\n\n`
  const type = (e as { type?: string }).type
  return (named && type !== undefined ? `event: ${type}\n` : '') + `data: ${JSON.stringify(e)}\n\n`
}).join('')

const chunk = (delta: object, finish: string | null = null, extra: object = {}): object => ({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }], ...extra })

const CHAT = sse([
  chunk({ role: 'assistant', content: '' }),
  chunk({ content: 'Héllo ' }),
  chunk({ content: 'wörld ☕' }),
  chunk({ tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'get_', arguments: '' } }] }),
  chunk({ tool_calls: [{ index: 0, function: { name: 'weather', arguments: '{"ci' } }] }),
  chunk({ tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{}' } }] }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: 'ty": "Paris"}' } }] }),
  chunk({}, 'tool_calls'),
  { id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [], usage: { prompt_tokens: 3, completion_tokens: 9, total_tokens: 12 } },
  '[DONE]'
])

test('chat: fed one byte at a time (UTF-8 sequences, lines and events split anywhere) it assembles content, tool calls by index, finish_reason and usage', () => {
  const bytes = Buffer.from(CHAT)
  const a = createAssembler('chat')
  for (let i = 0; i < bytes.length; i++) a.feed(bytes.subarray(i, i + 1))
  const r = a.finish()
  assert.ok(r.ok, JSON.stringify(r))
  assert.deepEqual(r.body.choices, [{
    index: 0,
    message: {
      role: 'assistant',
      content: 'Héllo wörld ☕',
      refusal: null,
      tool_calls: [
        { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } },
        { id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{}' } }
      ]
    },
    logprobs: null,
    finish_reason: 'tool_calls'
  }])
  assert.deepEqual(r.body.usage, { prompt_tokens: 3, completion_tokens: 9, total_tokens: 12 })
  assert.equal(r.body.object, 'chat.completion')
})

test('time to first token: the offset of the first non-empty content delta on the caller clock; the role-only chunk does not count', () => {
  let now = 1000
  const a = createAssembler('auto', { clock: () => now, startMs: 990 })
  const parts = CHAT.split('\n\n').map((p) => p + '\n\n')
  a.feed(parts[0]!) // role-only, content ""
  assert.equal(a.firstTokenMs, null)
  now = 1040
  a.feed(parts[1]!)
  assert.equal(a.firstTokenMs, 50)
  now = 1100
  for (const p of parts.slice(2)) a.feed(p)
  const r = a.finish()
  assert.ok(r.ok)
  assert.equal(r.api, 'chat')
  assert.deepEqual(r.timing, { firstTokenMs: 50, lastTokenMs: 110, tokenEvents: 6 })
  assert.equal(timePerOutputTokenMs(r.timing, 7), 10)
  assert.equal(timePerOutputTokenMs(r.timing, 1), null)
  assert.equal(timePerOutputTokenMs(r.timing, null), null, 'no usage: not estimated')
})

test('completions and auto detection', () => {
  const c = (text: string, finish: string | null = null): object => ({ id: 'x', object: 'text_completion', created: 1, model: 'm', choices: [{ index: 0, text, finish_reason: finish }] })
  const r = assembleBytes(Buffer.from(sse([c(' once'), c(' upon'), c('', 'length'), '[DONE]'])), 'auto', 1 << 20)
  assert.ok(r.ok)
  assert.equal(r.api, 'completions')
  assert.deepEqual(r.body.choices, [{ index: 0, text: ' once upon', logprobs: null, finish_reason: 'length' }])
})

test('responses: text, refusal and function-call argument deltas; response.completed is authoritative, deltas rebuild an empty output', () => {
  const events = [
    { type: 'response.created', response: { id: 'r1', object: 'response', model: 'm', status: 'in_progress', output: [] } },
    { type: 'response.output_item.added', output_index: 0, item: { id: 'msg', type: 'message', role: 'assistant', content: [] } },
    { type: 'response.output_text.delta', output_index: 0, content_index: 0, item_id: 'msg', delta: 'Hi ' },
    { type: 'response.output_text.delta', output_index: 0, content_index: 0, item_id: 'msg', delta: 'there' },
    { type: 'response.output_item.added', output_index: 1, item: { id: 'fc', type: 'function_call', call_id: 'call_1', name: 'f', arguments: '' } },
    { type: 'response.function_call_arguments.delta', output_index: 1, item_id: 'fc', delta: '{"a":' },
    { type: 'response.function_call_arguments.delta', output_index: 1, item_id: 'fc', delta: '1}' },
    { type: 'response.completed', response: { id: 'r1', object: 'response', model: 'm', status: 'completed', output: [], usage: { input_tokens: 2, output_tokens: 4 } } }
  ]
  const r = assembleBytes(Buffer.from(sse(events, true)), 'auto', 1 << 20)
  assert.ok(r.ok, JSON.stringify(r))
  assert.equal(r.api, 'responses')
  assert.deepEqual(r.body.output, [
    { id: 'msg', type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Hi there' }] },
    { id: 'fc', type: 'function_call', call_id: 'call_1', name: 'f', arguments: '{"a":1}' }
  ])
  assert.deepEqual(r.body.usage, { input_tokens: 2, output_tokens: 4 })
  assert.equal(r.timing.tokenEvents, 4)
})

test('failures: truncated (no [DONE] / no terminal event), too_large, invalid data, an error event', () => {
  const noDone = CHAT.replace('data: [DONE]\n\n', '')
  assert.deepEqual(pick(assembleBytes(Buffer.from(noDone), 'chat', 1 << 20)), ['truncated', 'chat'])
  assert.deepEqual(pick(assembleBytes(Buffer.from(sse([{ type: 'response.created', response: {} }])), 'auto', 1 << 20)), ['truncated', 'responses'])
  assert.deepEqual(pick(assembleBytes(Buffer.alloc(0), 'auto', 1 << 20)), ['truncated', null])
  assert.deepEqual(pick(assembleBytes(Buffer.from(CHAT), 'chat', 100)), ['too_large', null])
  // One unterminated line larger than the cap: the parser's own buffer bound.
  const a = createAssembler('chat', { maxBytes: 64 })
  a.feed('data: ' + 'x'.repeat(40))
  a.feed('y'.repeat(40))
  assert.equal(pick(a.finish())[0], 'too_large')
  assert.equal(pick(assembleBytes(Buffer.from('data: {not json\n\n'), 'chat', 1 << 20))[0], 'invalid')
  assert.equal(pick(assembleBytes(Buffer.from([0x64, 0x61, 0xff, 0xfe]), 'chat', 1 << 20))[0], 'invalid')
  assert.equal(pick(assembleBytes(Buffer.from(sse([{ unrelated: true }])), 'auto', 1 << 20))[0], 'invalid')
  assert.equal(pick(assembleBytes(Buffer.from(sse([chunk({ content: 'a' }), { error: { message: 'overloaded' } }])), 'chat', 1 << 20))[0], 'error')
  assert.equal(pick(assembleBytes(Buffer.from(sse([{ type: 'response.created', response: {} }, { type: 'response.failed', response: {} }])), 'auto', 1 << 20))[0], 'error')
  assert.throws(() => createAssembler('chat', { maxBytes: 0 }), RangeError)
})

test('comments, unknown fields, CRLF line ends and keep-alive pings are accepted', () => {
  const text = ': ping\r\nretry: 100\r\nfoo: bar\r\n' + CHAT.replace(/\n/g, '\r\n')
  const r = assembleBytes(Buffer.from(text), 'chat', 1 << 20)
  assert.ok(r.ok, JSON.stringify(r))
})

function pick (r: ReturnType<typeof assembleBytes>): [string, string | null] {
  return r.ok ? ['ok', r.api] : [r.reason, r.api]
}
