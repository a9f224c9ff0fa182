import type { CompareFormat } from '../config/schema.js'
import type { CapturedResponse } from '../compare/types.js'
import { decodeBody } from '../compare/body.js'
import { decodeEventStream, isEventStream } from '../compare/llm/assemble.js'
import { normaliseAnswer } from '../compare/llm/answer.js'
import { resolveFormat, type ConcreteFormat } from '../compare/formats/index.js'
import { asColumns, isObject } from '../compare/formats/format.js'
import { isOipV2Body } from '../compare/formats/oip-v2.js'
import { argmax, roleOf, ROLE_LABEL, ROLE_NONE, SCORE_KEY } from '../compare/instance.js'
import { REDACTED, redactValue, type RedactionPatterns } from '../compare/redact.js'

/**
 * What a model predicted for one instance, as kept in the prediction log: never the body, only
 * the decision. A classifier has `label` (with `scores` when it sent a score vector: the label is
 * then the argmax index unless the answer named a label too); a regressor has `value`; an LLM
 * answer has `text` and/or `tools` (the names of the functions it called).
 */
export interface InstancePrediction {
  label?: string
  scores?: number[]
  value?: number
  text?: string
  tools?: string[]
}

/** The kind of label an instance's prediction can be judged against. */
export type PredictionKind = 'class' | 'regression' | 'text' | 'none'

export function kindOf (p: InstancePrediction): PredictionKind {
  if (p.label !== undefined) return 'class'
  if (p.value !== undefined) return 'regression'
  if (p.text !== undefined || p.tools !== undefined) return 'text'
  return 'none'
}

/** The per-instance predictions of one answer, with the format actually used. */
export interface Extracted {
  format: ConcreteFormat
  instances: InstancePrediction[]
}

/** Longest generated text kept per instance (the log holds decisions, not documents). */
const MAX_TEXT = 2048
/** Longest score vector kept (a 1,000-class softmax is still a decision, not a body). */
const MAX_SCORES = 1024
/** Most instances kept per answer. */
const MAX_INSTANCES = 1024

/**
 * Decodes a captured response (JSON or an OpenAI event stream, content codings undone) and
 * extracts its per-instance predictions; null when the body is not usable (truncated, not JSON,
 * an error status) or has no instance the format recognises. Pure and synchronous; callers run it
 * off the client's path. Shared by the feedback and drift rooms.
 */
export function extractResponse (res: CapturedResponse, configured: CompareFormat, url: string, redact: RedactionPatterns, maxBytes: number): Extracted | null {
  if (res.status < 200 || res.status >= 300) return null
  const decoded = isEventStream(res.headers) ? decodeEventStream(res, 'auto', maxBytes) : decodeBody(res, maxBytes)
  if (!decoded.ok) return null
  return extractPredictions(configured, url, decoded.value, redact)
}

/**
 * The per-instance predictions of a parsed body. `configured` is the `compare.format` in force
 * (`auto` detects from the request path and the body, as the comparator does). Values at the
 * `compare.mismatches.redact.paths` pointers are removed before anything is kept.
 */
export function extractPredictions (configured: CompareFormat, url: string, body: unknown, redact: RedactionPatterns): Extracted | null {
  const value = redact.length === 0 ? body : redactValue(body, redact)
  const format = resolveFormat(configured, url, value, undefined)
  const instances = instancesOf(format.name, value)
  if (instances === null || instances.length === 0) return null
  return { format: format.name, instances: instances.slice(0, MAX_INSTANCES) }
}

function instancesOf (format: ConcreteFormat, body: unknown): InstancePrediction[] | null {
  switch (format) {
    case 'kserve-v1': {
      if (!isObject(body)) return null
      if (Array.isArray(body.predictions)) return body.predictions.map(predictionOf)
      if (isOipV2Body(body)) return null
      if (Array.isArray(body.outputs)) return body.outputs.map(predictionOf)
      return rows(asColumns(body.outputs))
    }
    case 'mlflow': {
      if (Array.isArray(body)) return body.map(predictionOf)
      if (!isObject(body)) return null
      if (Array.isArray(body.predictions)) return body.predictions.map(predictionOf)
      return rows(asColumns(body.predictions))
    }
    case 'oip-v2':
      return tensorRows(body)
    case 'openai-chat':
    case 'openai-completions':
    case 'openai-responses': {
      const api = format === 'openai-chat' ? 'chat' : format === 'openai-completions' ? 'completions' : 'responses'
      const a = normaliseAnswer(api, body)
      if (a === null) return null
      return a.choices.map((c) => {
        const out: InstancePrediction = {}
        const text = c.message?.content ?? c.text ?? null
        if (text !== null) out.text = text.slice(0, MAX_TEXT)
        const calls = c.message?.tool_calls ?? []
        if (calls.length > 0) out.tools = calls.map((t) => t.function.name)
        return out
      })
    }
    case 'json':
      if (Array.isArray(body)) return body.map(predictionOf)
      return [predictionOf(body)]
  }
}

/** Column table → one object per row. */
function rows (columns: Record<string, unknown[]> | null): InstancePrediction[] | null {
  if (columns === null) return null
  let n = 0
  for (const k in columns) n = Math.max(n, columns[k]!.length)
  const out: InstancePrediction[] = []
  for (let i = 0; i < n; i++) {
    const row: Record<string, unknown> = {}
    for (const k in columns) row[k] = columns[k]![i]
    out.push(predictionOf(row))
  }
  return out
}

/** OIP v2: row i is the i-th batch slice of every output tensor. */
function tensorRows (body: unknown): InstancePrediction[] | null {
  if (!isOipV2Body(body)) return null
  const outputs = (body as { outputs: unknown[] }).outputs
  const tensors: Array<{ name: string, data: unknown[], batch: number, stride: number }> = []
  for (const o of outputs) {
    if (!isObject(o) || typeof o.name !== 'string') continue
    const data = Array.isArray(o.data) ? (o.data as unknown[]).flat(Infinity) : [o.data]
    const shape = Array.isArray(o.shape) && o.shape.every((d) => typeof d === 'number') ? o.shape as number[] : [data.length]
    const batch = shape.length === 0 ? 1 : shape[0]!
    tensors.push({ name: o.name, data, batch, stride: batch > 0 ? Math.max(1, Math.floor(data.length / batch)) : 1 })
  }
  if (tensors.length === 0) return null
  const out: InstancePrediction[] = []
  for (let i = 0; i < tensors[0]!.batch; i++) {
    const row: Record<string, unknown> = {}
    for (const t of tensors) row[t.name] = t.stride === 1 ? t.data[i] : t.data.slice(i * t.stride, (i + 1) * t.stride)
    // One unnamed output (`output-0`, `predict`): the row is that value.
    out.push(predictionOf(tensors.length === 1 ? row[tensors[0]!.name] : row))
  }
  return out
}

const WHITESPACE = /\s/

/** One instance's prediction, by the same heuristics the comparator uses (src/compare/instance.ts). */
export function predictionOf (v: unknown): InstancePrediction {
  if (v === REDACTED) return {}
  switch (typeof v) {
    case 'string':
      return WHITESPACE.test(v) ? { text: v.slice(0, MAX_TEXT) } : { label: v }
    case 'number':
      return Number.isFinite(v) ? { value: v } : {}
    case 'boolean':
      return { label: String(v) }
  }
  if (Array.isArray(v)) return vectorOf(v, undefined)
  if (!isObject(v)) return {}
  const out: InstancePrediction = {}
  let single: unknown
  let fields = 0
  for (const k in v) {
    const role = roleOf(k)
    const x = v[k]
    if (role === ROLE_NONE || x === REDACTED) continue
    fields++
    single = x
    if (role === ROLE_LABEL) {
      const l = labelOf(x)
      if (l !== undefined) out.label = l
      continue
    }
    if (Array.isArray(x)) {
      const vec = vectorOf(x, k)
      if (vec.scores !== undefined) out.scores ??= vec.scores
      if (vec.value !== undefined) out.value ??= vec.value
      if (vec.label !== undefined && out.label === undefined) out.label = vec.label
      continue
    }
    if (typeof x === 'number' && Number.isFinite(x)) {
      // A lone probability next to a label is evidence, not a regression output.
      if (!SCORE_KEY.test(k)) out.value ??= x
      continue
    }
    if (typeof x === 'string') {
      if (WHITESPACE.test(x)) out.text ??= x.slice(0, MAX_TEXT)
      else out.label ??= x
    }
  }
  if (out.label === undefined && out.scores !== undefined) out.label = String(argmax(out.scores))
  // A label wins over a regression value in the same object (`{class_id: 3, score: 0.9}`).
  if (out.label !== undefined) delete out.value
  if (fields === 1 && out.label === undefined && out.value === undefined && out.text === undefined && isObject(single)) return predictionOf(single)
  return out
}

function labelOf (x: unknown): string | undefined {
  if (typeof x === 'string') return x === REDACTED ? undefined : x
  if (typeof x === 'number' || typeof x === 'boolean') return String(x)
  if (Array.isArray(x) && x.length > 0 && (typeof x[0] === 'string' || typeof x[0] === 'number')) return String(x[0])
  return undefined
}

function vectorOf (v: unknown[], key: string | undefined): InstancePrediction {
  if (v.length === 0) return {}
  if (v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    const nums = v as number[]
    if (nums.length === 1) return { value: nums[0]! }
    const unit = nums.every((x) => x >= 0 && x <= 1)
    if ((key !== undefined && SCORE_KEY.test(key)) || unit || key === undefined) {
      const scores = nums.slice(0, MAX_SCORES)
      return { label: String(argmax(scores)), scores }
    }
    return {}
  }
  if (typeof v[0] === 'string') return { label: v[0] }
  return {}
}
