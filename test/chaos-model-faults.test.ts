// Issue #20: the model faults on each response format the comparison knows, as pure functions:
// the rewritten answer keeps its format's shape.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { applyModelFaults, firstTokens, ModelFaultState, type ModelFault } from '../src/chaos/model-faults.js'

function run (doc: unknown, faults: ModelFault[], state = new ModelFaultState()): { doc: any, applied: string[] } {
  return applyModelFaults(structuredClone(doc), faults, state, JSON.stringify(doc))
}

test('OIP v2: BYTES label tensors flip among the model\'s labels; [n, k] score rows stay distributions', () => {
  const state = new ModelFaultState()
  const doc = {
    model_name: 'm',
    outputs: [
      { name: 'label', datatype: 'BYTES', shape: [3], data: ['cat', 'dog', 'cat'] },
      { name: 'probs', datatype: 'FP32', shape: [3, 2], data: [0.9, 0.1, 0.2, 0.8, 0.7, 0.3] }
    ]
  }
  const flipped = run(doc, [{ kind: 'flip_label', p: 1 }], state)
  assert.deepEqual(flipped.applied, ['flip_label'])
  assert.deepEqual(flipped.doc.outputs[0].data, ['dog', 'cat', 'dog'])
  const probs = flipped.doc.outputs[1].data as number[]
  assert.equal(probs.length, 6)
  assert.deepEqual(flipped.doc.outputs[1].shape, [3, 2])
  for (let r = 0; r < 3; r++) {
    assert.ok(Math.abs(probs[2 * r]! + probs[2 * r + 1]! - 1) < 1e-5)
    assert.notEqual(probs[2 * r]! > probs[2 * r + 1]!, doc.outputs[1]!.data[2 * r]! > doc.outputs[1]!.data[2 * r + 1]!, `row ${r} flipped`)
  }
  const noisy = run(doc, [{ kind: 'score_noise', sigma: 0.1 }], state)
  const n = noisy.doc.outputs[1].data as number[]
  for (let r = 0; r < 3; r++) assert.ok(Math.abs(n[2 * r]! + n[2 * r + 1]! - 1) < 1e-5)
})

test('MLflow / bare lists: class ids flip to another id seen, regression numbers are left alone', () => {
  const state = new ModelFaultState()
  run({ predictions: [0, 1, 2] }, [], state)
  const r = run({ predictions: [1, 1, 1] }, [{ kind: 'flip_label', p: 1 }], state)
  for (const v of r.doc.predictions) assert.ok(v === 0 || v === 2)
  const reg = run({ predictions: [1.5, 2.25] }, [{ kind: 'flip_label', p: 1 }])
  assert.deepEqual(reg.doc.predictions, [1.5, 2.25])
  assert.deepEqual(reg.applied, [], 'nothing to flip: not counted')
})

test('bias by label name, drop_field with wildcards, stale replays an earlier answer', () => {
  const state = new ModelFaultState()
  const doc = { predictions: [{ label: 'a', scores: [0.8, 0.2] }, { label: 'b', scores: [0.3, 0.7] }] }
  const biased = run(doc, [{ kind: 'bias', toward: 'b', strength: 1 }], state)
  assert.deepEqual(biased.doc.predictions.map((p: { label: string }) => p.label), ['b', 'b'])
  for (const p of biased.doc.predictions) assert.ok(Math.abs(p.scores[0] + p.scores[1] - 1) < 1e-6)
  const dropped = run(doc, [{ kind: 'drop_field', pointer: '/predictions/*/scores' }])
  assert.deepEqual(dropped.doc, { predictions: [{ label: 'a' }, { label: 'b' }] })
  const s2 = new ModelFaultState()
  assert.deepEqual(run({ predictions: ['x'] }, [{ kind: 'stale' }], s2).applied, [], 'nothing recorded yet')
  const stale = run({ predictions: ['y'] }, [{ kind: 'stale' }], s2)
  assert.deepEqual(stale.doc, { predictions: ['x'] })
  assert.deepEqual(stale.applied, ['stale'])
})

test('truncate_text: completions and responses answers, token counting', () => {
  assert.equal(firstTokens('  one two  three four', 2), '  one two')
  assert.equal(firstTokens('one', 5), 'one')
  assert.equal(firstTokens('one two', 0), '')
  const comp = run({ object: 'text_completion', choices: [{ index: 0, text: 'a b c d', finish_reason: 'stop' }] }, [{ kind: 'truncate_text', tokens: 2 }])
  assert.deepEqual(comp.doc.choices[0], { index: 0, text: 'a b', finish_reason: 'length' })
  const resp = run({ object: 'response', status: 'completed', output: [{ type: 'message', content: [{ type: 'output_text', text: 'x y z' }] }] }, [{ kind: 'truncate_text', tokens: 1 }])
  assert.equal(resp.doc.output[0].content[0].text, 'x')
  assert.equal(resp.doc.status, 'incomplete')
  assert.deepEqual(resp.doc.incomplete_details, { reason: 'max_output_tokens' })
  assert.deepEqual(run({ choices: [{ message: { content: 'short' } }] }, [{ kind: 'truncate_text', tokens: 5 }]).applied, [], 'already short: unchanged')
})
