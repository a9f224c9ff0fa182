import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Comparator } from '../src/compare/comparator.js'
import { resolveFormat } from '../src/compare/formats/index.js'
import { compareSchema } from '../src/config/schema.js'
import type { CompareResult } from '../src/compare/types.js'
import { captured, kservePredictions, makeJob } from './fixtures/compare.js'

function run (url: string, primary: unknown, shadow: unknown, over: object = {}): CompareResult {
  return new Comparator(compareSchema.parse(over)).compare(makeJob({ url, primary: captured(primary as object), shadow: captured(shadow as object) }))
}

const close = (a: number, b: number, eps = 1e-12): boolean => Math.abs(a - b) <= eps

// ---------------------------------------------------------------- kserve-v1

test('kserve-v1: a batch of 32 {label, scores, model_version} with float noise matches, 32 instances', () => {
  const r = run('/v1/models/cifar10:predict', { predictions: kservePredictions(0) }, { predictions: kservePredictions(2e-7) })
  assert.equal(r.format, 'kserve-v1')
  assert.equal(r.outcome, 'match')
  assert.equal(r.instances.compared, 32)
  assert.equal(r.instances.disagreements, 0)
  assert.equal(r.instances.scoreDeltas.length, 32)
  assert.ok(r.instances.scoreDeltas.every((d) => d > 0 && d <= 4e-7))
  assert.deepEqual(r.instances.topKOverlap, new Array(32).fill(1))
})

test('kserve-v1: a flipped class is one disagreement; latency and version fields do not decide agreement', () => {
  const p = kservePredictions(0, { instances: 8 }).map((x) => ({ ...x, latency_ms: 3 }))
  const s = kservePredictions(0, { instances: 8 }).map((x) => ({ ...x, latency_ms: 5, model_version: '4' }))
  const flipped = s[5]!
  const top = flipped.class_id
  const other = (top + 1) % 10;
  [flipped.scores[top], flipped.scores[other]] = [flipped.scores[other]!, flipped.scores[top]!]
  flipped.label = 'other'
  flipped.class_id = other
  const r = run('/v1/models/m:predict', { predictions: p }, { predictions: s })
  assert.equal(r.outcome, 'mismatch')
  assert.equal(r.instances.compared, 8)
  assert.equal(r.instances.disagreements, 1)
  const expectedDelta = Math.abs(p[5]!.scores[top]! - p[5]!.scores[other]!)
  assert.ok(close(r.instances.scoreDeltas[5]!, expectedDelta))
  assert.ok(r.differences.some((d) => d.path === '/predictions/5/label'))
  assert.ok(r.differences.some((d) => d.path === '/predictions/0/latency_ms'))
})

test('kserve-v1: single instance, bare labels, score vectors, regression and ranked labels', () => {
  const single = run('/v1/models/m:predict', { predictions: [{ label: 'spam', probability: 0.97 }] }, { predictions: [{ label: 'spam', probability: 0.91 }] })
  assert.deepEqual([single.instances.compared, single.instances.disagreements], [1, 0])
  assert.ok(close(single.instances.scoreDeltas[0]!, 0.06, 1e-9))
  assert.equal(single.outcome, 'mismatch', 'the score moved beyond tolerance')

  const labels = run('/v1/models/m:predict', { predictions: ['cat', 'dog', 'cat'] }, { predictions: ['cat', 'cat', 'cat'] })
  assert.deepEqual(labels.instances, { compared: 3, disagreements: 1, scoreDeltas: [] })

  const vectors = run('/v1/models/m:predict', { predictions: [[0.1, 0.9], [0.6, 0.4]] }, { predictions: [[0.2, 0.8], [0.4, 0.6]] })
  assert.deepEqual([vectors.instances.compared, vectors.instances.disagreements], [2, 1])
  assert.ok(close(vectors.instances.scoreDeltas[0]!, 0.1, 1e-9) && close(vectors.instances.scoreDeltas[1]!, 0.2, 1e-9))

  // Regression: values beyond [0, 1] are numbers within tolerance, abs error recorded.
  const reg = run('/v1/models/m:predict', { predictions: [[412.5], [380.0], [99.1]] }, { predictions: [[412.6], [380.0], [120.3]] }, { numeric: { absTol: 0, relTol: 1e-3 } })
  assert.deepEqual([reg.instances.compared, reg.instances.disagreements], [3, 1])
  assert.ok(close(reg.instances.scoreDeltas[2]!, 21.2, 1e-9))

  const ranked = run('/v1/models/m:predict', { predictions: [['cat', 'dog', 'fox']] }, { predictions: [['cat', 'fox', 'owl']] }, { topK: 3 })
  assert.equal(ranked.instances.disagreements, 0)
  assert.ok(close(ranked.instances.topKOverlap![0]!, 2 / 3))
})

test('kserve-v1: argmax ties within tolerance are not flips; top-k overlap uses compare.topK', () => {
  const r = run('/v1/models/m:predict',
    { predictions: [{ scores: [0.3, 0.3000001, 0.2, 0.1, 0.1] }] },
    { predictions: [{ scores: [0.3000001, 0.3, 0.2, 0.1, 0.1] }] }, { topK: 2 })
  assert.equal(r.instances.disagreements, 0)
  assert.deepEqual(r.instances.topKOverlap, [1])
  const r2 = run('/v1/models/m:predict',
    { predictions: [{ scores: [0.5, 0.3, 0.1, 0.06, 0.04] }] },
    { predictions: [{ scores: [0.3, 0.5, 0.04, 0.06, 0.1] }] }, { topK: 3 })
  assert.equal(r2.instances.disagreements, 1)
  assert.ok(close(r2.instances.topKOverlap![0]!, 2 / 3))
})

test('kserve-v1: instance count mismatch makes the extra instances disagreements', () => {
  const r = run('/v1/models/m:predict', { predictions: ['a', 'b', 'c', 'd'] }, { predictions: ['a', 'b'] })
  assert.deepEqual(r.instances, { compared: 4, disagreements: 2, scoreDeltas: [] })
  const err = run('/v1/models/m:predict', { predictions: ['a', 'b'] }, { error: 'model not loaded' })
  assert.deepEqual(err.instances, { compared: 2, disagreements: 2, scoreDeltas: [] })
})

test('kserve-v1: TF Serving column-oriented outputs are split per row', () => {
  const r = run('/v1/models/m:predict',
    { outputs: { classes: ['a', 'b', 'c'], scores: [[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]] } },
    { outputs: { classes: ['a', 'b', 'd'], scores: [[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]] } })
  assert.deepEqual([r.instances.compared, r.instances.disagreements], [3, 1])
})

test('kserve-v1: objects without prediction fields fall back to a structural comparison', () => {
  const r = run('/v1/models/m:predict', { predictions: [{ foo: 1, bar: 'x' }, { foo: 2, bar: 'y' }] }, { predictions: [{ foo: 1, bar: 'x' }, { foo: 2, bar: 'z' }] })
  assert.deepEqual([r.instances.compared, r.instances.disagreements], [2, 1])
})

// ---------------------------------------------------------------- oip-v2

const oip = (outputs: object[]): object => ({ model_name: 'iris', model_version: '1', id: 'r1', outputs })

test('oip-v2: instances are slices along the batch dimension; outputs pair by name', () => {
  const p = oip([
    { name: 'predict_proba', shape: [3, 3], datatype: 'FP32', data: [0.8, 0.1, 0.1, 0.1, 0.7, 0.2, 0.3, 0.3, 0.4] },
    { name: 'label', shape: [3], datatype: 'BYTES', data: ['setosa', 'versicolor', 'virginica'] }
  ])
  const s = {
    ...oip([
      { name: 'label', shape: [3], datatype: 'BYTES', data: ['setosa', 'versicolor', 'virginica'] },
      { name: 'predict_proba', shape: [3, 3], datatype: 'FP32', data: [0.8, 0.1, 0.1, 0.1, 0.7, 0.2, 0.3, 0.3, 0.4] }
    ]),
    model_version: '2'
  }
  const r = run('/v2/models/iris/infer', p, s)
  assert.equal(r.format, 'oip-v2')
  assert.equal(r.outcome, 'match', JSON.stringify(r.differences))
  assert.deepEqual([r.instances.compared, r.instances.disagreements], [3, 0])
  assert.deepEqual(r.instances.scoreDeltas, [0, 0, 0])

  const s2 = oip([
    { name: 'predict_proba', shape: [3, 3], datatype: 'FP32', data: [0.8, 0.1, 0.1, 0.6, 0.3, 0.1, 0.3, 0.3, 0.4] },
    { name: 'label', shape: [3], datatype: 'BYTES', data: ['setosa', 'setosa', 'virginica'] }
  ])
  const r2 = run('/v2/models/iris/infer', p, s2)
  assert.equal(r2.outcome, 'mismatch')
  assert.deepEqual([r2.instances.compared, r2.instances.disagreements], [3, 1])
  assert.ok(close(r2.instances.scoreDeltas[1]!, 0.5, 1e-9))
  assert.ok(r2.differences.some((d) => d.path === '/outputs/0/data/3'))
})

test('oip-v2: single instance, nested data, batch mismatch, missing output', () => {
  const one = run('/v2/models/m/versions/3/infer',
    oip([{ name: 'y', shape: [1, 1], datatype: 'FP64', data: [[12.5]] }]),
    oip([{ name: 'y', shape: [1, 1], datatype: 'FP64', data: [[12.75]] }]), { numeric: { absTol: 0.1, relTol: 0 } })
  assert.deepEqual([one.instances.compared, one.instances.disagreements], [1, 1])
  assert.ok(close(one.instances.scoreDeltas[0]!, 0.25))

  const batch = run('/v2/models/m/infer',
    oip([{ name: 'y', shape: [3], datatype: 'INT64', data: [1, 2, 3] }]),
    oip([{ name: 'y', shape: [2], datatype: 'INT64', data: [1, 2] }]))
  assert.deepEqual([batch.instances.compared, batch.instances.disagreements], [3, 1])

  const missing = run('/v2/models/m/infer',
    oip([{ name: 'y', shape: [2], datatype: 'INT64', data: [1, 2] }, { name: 'p', shape: [2], datatype: 'FP32', data: [0.5, 0.5] }]),
    oip([{ name: 'y', shape: [2], datatype: 'INT64', data: [1, 2] }]))
  assert.deepEqual([missing.instances.compared, missing.instances.disagreements], [2, 2])
})

// ---------------------------------------------------------------- mlflow

test('mlflow: regression list with abs errors, column table, bare list', () => {
  const reg = run('/invocations', { predictions: [101.2, 87.5, 93.0] }, { predictions: [101.25, 87.5, 99.0] }, { numeric: { absTol: 0.1, relTol: 0 } })
  assert.equal(reg.format, 'mlflow')
  assert.deepEqual([reg.instances.compared, reg.instances.disagreements], [3, 1])
  assert.ok(close(reg.instances.scoreDeltas[0]!, 0.05, 1e-9) && close(reg.instances.scoreDeltas[2]!, 6, 1e-9))

  const cols = run('/invocations',
    { predictions: { label: ['a', 'b'], probability: [[0.9, 0.1], [0.4, 0.6]] } },
    { predictions: { label: ['a', 'a'], probability: [[0.9, 0.1], [0.6, 0.4]] } })
  assert.deepEqual([cols.instances.compared, cols.instances.disagreements], [2, 1])

  const bare = run('/invocations', [1, 0, 1, 1], [1, 0, 0, 1])
  assert.deepEqual([bare.instances.compared, bare.instances.disagreements], [4, 1])

  const records = run('/invocations', { predictions: [{ churn: 0.2, segment: 'a' }] }, { predictions: [{ churn: 0.2, segment: 'a' }] })
  assert.deepEqual([records.instances.compared, records.instances.disagreements], [1, 0])
})

// ---------------------------------------------------------------- openai-chat

function chat (contents: string[], over: object = {}): object {
  return {
    id: `chatcmpl-${Math.random().toString(36).slice(2)}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000) + Math.floor(Math.random() * 100),
    model: 'llama-3-8b',
    system_fingerprint: `fp_${Math.random()}`,
    choices: contents.map((content, index) => ({ index, message: { role: 'assistant', content }, finish_reason: 'stop' })),
    usage: { prompt_tokens: 10, completion_tokens: Math.floor(Math.random() * 50), total_tokens: 60 },
    ...over
  }
}

test('openai-chat: ids, timestamps, usage, fingerprint and model are ignored; similar text agrees', () => {
  const r = run('/v1/chat/completions',
    chat(['The capital of France is Paris. It is known for the Eiffel Tower.']),
    chat(['The capital of France is Paris.  It is known for the Eiffel tower!'], { model: 'llama-3-8b-v2' }))
  assert.equal(r.format, 'openai-chat')
  assert.equal(r.outcome, 'match', JSON.stringify(r.differences))
  assert.deepEqual(r.instances, { compared: 1, disagreements: 0, scoreDeltas: [] })
})

test('openai-chat: a different answer disagrees; n=2 choices are two instances', () => {
  const r = run('/v1/chat/completions', chat(['Paris.', 'The answer is Paris.']), chat(['paris.', 'I am not sure, maybe Lyon?']))
  assert.equal(r.outcome, 'mismatch')
  assert.deepEqual(r.differences.map((d) => d.path), ['/choices/1/message/content'])
  assert.deepEqual(r.instances, { compared: 2, disagreements: 1, scoreDeltas: [] })
})

test('openai-chat: text completions and tool calls', () => {
  const text = (t: string): object => ({ id: 'x', object: 'text_completion', created: 1, model: 'm', choices: [{ index: 0, text: t, finish_reason: 'length' }] })
  const r = run('/v1/completions', text(' once upon a time'), text('Once upon a time'))
  assert.deepEqual(r.instances, { compared: 1, disagreements: 0, scoreDeltas: [] })
  const tool = (name: string): object => chat([], { choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name, arguments: '{}' } }] }, finish_reason: 'tool_calls' }] })
  assert.equal(run('/v1/chat/completions', tool('get_weather'), tool('get_time')).instances.disagreements, 1)
})

test('openai-chat: the /model default ignore can be turned off with compare.paths', () => {
  const r = run('/v1/chat/completions', chat(['hi']), chat(['hi'], { model: 'other' }), { paths: { '/model': { ignore: false } } })
  assert.deepEqual(r.differences.map((d) => d.path), ['/model'])
})

// ---------------------------------------------------------------- json and detection

test('json: any difference is one disagreeing instance', () => {
  const r = run('/anything', { a: { b: [1, 2] } }, { a: { b: [1, 3] } })
  assert.equal(r.format, 'json')
  assert.deepEqual(r.instances, { compared: 1, disagreements: 1, scoreDeltas: [] })
  assert.deepEqual(run('/anything', { a: 1 }, { a: 1 }).instances, { compared: 1, disagreements: 0, scoreDeltas: [] })
})

test('auto detection by request path and by body shape; explicit format wins', () => {
  const cases: Array<[string, unknown, string]> = [
    ['/v1/models/m:predict', {}, 'kserve-v1'],
    ['/score', { predictions: [1] }, 'kserve-v1'],
    ['/score', { outputs: [[0.1, 0.9]] }, 'kserve-v1'],
    ['/v2/models/m/infer', {}, 'oip-v2'],
    ['/score', { outputs: [{ name: 'y', shape: [1], datatype: 'FP32', data: [1] }] }, 'oip-v2'],
    ['/invocations', { predictions: [1] }, 'mlflow'],
    ['/score', { predictions: { a: [1] } }, 'mlflow'],
    ['/v1/chat/completions?x=1', {}, 'openai-chat'],
    ['/score', { object: 'chat.completion', choices: [] }, 'openai-chat'],
    ['/score', { result: 1 }, 'json']
  ]
  for (const [url, body, want] of cases) assert.equal(resolveFormat('auto', url, body, undefined).name, want, `${url} ${JSON.stringify(body)}`)
  assert.equal(resolveFormat('auto', '/x', { error: 'boom' }, { predictions: [1] }).name, 'kserve-v1', 'falls back to the shadow body')
  assert.equal(resolveFormat('json', '/v1/models/m:predict', { predictions: [1] }, undefined).name, 'json')
  assert.equal(run('/x', { predictions: ['a'] }, { predictions: ['b'] }, { format: 'json' }).format, 'json')
})
