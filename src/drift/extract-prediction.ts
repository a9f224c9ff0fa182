import { asColumns, isObject } from '../compare/formats/format.js'
import { isOipV2Body } from '../compare/formats/oip-v2.js'
import { argmax, roleOf, ROLE_LABEL, ROLE_PREDICTION, SCORE_KEY } from '../compare/instance.js'

/** One instance's prediction as drift and assertions see it. */
export interface Prediction {
  /** The predicted class (a label field, the first of a ranked label list, or the argmax index of the scores). */
  label?: string
  /** Class scores (a score vector), when the answer has them. */
  scores?: number[]
  /** A regression output (a lone number). */
  value?: number
}

/**
 * The instances of a model's answer, one per predicted row, as the comparison's formats split
 * them (src/compare/formats/): KServe v1 / TF Serving `predictions` or `outputs` (a list, or a
 * column table read row by row), MLflow `predictions` (a list, a column table, or a bare list),
 * OIP v2 `outputs` tensors sliced along the batch dimension into `{<output name>: slice}`, the
 * `choices` (`output` for the Responses API) of an OpenAI answer. Anything else is one instance:
 * the whole body.
 */
export function instancesOf (format: string, body: unknown): unknown[] {
  switch (format) {
    case 'kserve-v1':
    case 'mlflow': {
      if (Array.isArray(body)) return body
      if (!isObject(body)) return [body]
      const list = body.predictions ?? body.outputs
      if (Array.isArray(list)) return list
      const cols = asColumns(list)
      return cols === null ? [body] : rowsOf(cols)
    }
    case 'oip-v2':
      return isOipV2Body(body) ? oipRows((body as { outputs: unknown[] }).outputs) : [body]
    case 'openai-chat':
    case 'openai-completions':
      return isObject(body) && Array.isArray(body.choices) ? body.choices : [body]
    case 'openai-responses':
      return isObject(body) && Array.isArray(body.output) ? body.output : [body]
    default:
      if (isObject(body) && Array.isArray(body.predictions)) return body.predictions
      return [body]
  }
}

/**
 * Per instance: the label, the scores and the regression value, found as the comparison finds
 * them (src/compare/instance.ts: LABEL_KEYS, SCORE_KEY). LLM answers have neither (their text
 * is not a class): they yield empty predictions.
 */
export function extractPredictions (format: string, body: unknown): Prediction[] {
  if (format.startsWith('openai-')) return instancesOf(format, body).map(() => ({}))
  return instancesOf(format, body).map(predictionOf)
}

/** The prediction of one instance value (see {@link extractPredictions}). */
export function predictionOf (inst: unknown): Prediction {
  if (typeof inst === 'string') return { label: inst }
  if (typeof inst === 'boolean') return { label: String(inst) }
  if (typeof inst === 'number') return Number.isFinite(inst) ? { value: inst } : {}
  if (Array.isArray(inst)) {
    if (isNumbers(inst)) {
      if (inst.length === 1) return { value: inst[0] as number }
      return inst.length === 0 ? {} : { scores: inst, label: String(argmax(inst)) }
    }
    if (inst.length > 0 && typeof inst[0] === 'string') return { label: inst[0] }
    return {}
  }
  if (!isObject(inst)) return {}
  const out: Prediction = {}
  for (const k in inst) {
    const role = roleOf(k)
    if (role === ROLE_LABEL && out.label === undefined) {
      const v = inst[k]
      const first = Array.isArray(v) ? v[0] : v
      if (typeof first === 'string' || typeof first === 'number' || typeof first === 'boolean') out.label = String(first)
    } else if (role === ROLE_PREDICTION) {
      const v = inst[k]
      if (Array.isArray(v) && v.length > 1 && isNumbers(v) && SCORE_KEY.test(k)) out.scores ??= v
      else if (Array.isArray(v) && v.length > 1 && isNumbers(v) && out.scores === undefined) out.scores = v
      else if (typeof v === 'number' && Number.isFinite(v) && out.value === undefined && !SCORE_KEY.test(k)) out.value = v
      else if (typeof v === 'string' && out.label === undefined && !/\s/.test(v)) out.label = v
    }
  }
  if (out.label === undefined && out.scores !== undefined) out.label = String(argmax(out.scores))
  if (out.label === undefined && out.value === undefined) {
    // A row of one unnamed output (an OIP v2 tensor called `output0`): that output is the prediction.
    const keys = Object.keys(inst)
    if (keys.length === 1) return predictionOf(inst[keys[0] as string])
  }
  return out
}

/**
 * The instances of a request body, in the order the answer's instances follow: KServe v1 / TF
 * Serving `instances` or `inputs`, MLflow `instances`, `inputs`, `dataframe_records` or
 * `dataframe_split.data`, OIP v2 `inputs` tensors sliced by batch row. Null when the body has
 * none of these (then only a one-instance answer can be paired with its input: the whole body).
 */
export function requestInstancesOf (body: unknown): unknown[] | null {
  if (!isObject(body)) return Array.isArray(body) ? body : null
  if (isOipV2Body({ outputs: body.inputs })) return oipRows(body.inputs as unknown[])
  for (const k of ['instances', 'inputs', 'dataframe_records']) {
    const v = body[k]
    if (Array.isArray(v)) return v
  }
  const split = body.dataframe_split
  if (isObject(split) && Array.isArray(split.data)) return split.data
  return null
}

/** The largest score of a prediction, or its regression value: what the score distribution tracks. */
export function topScoreOf (p: Prediction): number | undefined {
  if (p.scores !== undefined) {
    let best = -Infinity
    for (const s of p.scores) if (s > best) best = s
    return best
  }
  return p.value
}

function rowsOf (cols: Record<string, unknown[]>): Array<Record<string, unknown>> {
  let n = 0
  for (const k in cols) n = Math.max(n, (cols[k] as unknown[]).length)
  const rows: Array<Record<string, unknown>> = []
  for (let i = 0; i < n; i++) {
    const row: Record<string, unknown> = {}
    for (const k in cols) row[k] = (cols[k] as unknown[])[i]
    rows.push(row)
  }
  return rows
}

/** OIP v2 tensors sliced along the first (batch) dimension: row i is `{name: slice_i}` per output. */
function oipRows (outputs: unknown[]): Array<Record<string, unknown>> {
  const tensors: Array<{ name: string, data: unknown[], stride: number, batch: number }> = []
  for (const o of outputs) {
    if (!isObject(o) || typeof o.name !== 'string') continue
    const data = Array.isArray(o.data) ? (o.data as unknown[]).flat(Infinity) : [o.data]
    const shape = Array.isArray(o.shape) && o.shape.every((d) => typeof d === 'number') ? o.shape as number[] : [data.length]
    const batch = shape.length === 0 ? 1 : shape[0] as number
    tensors.push({ name: o.name, data, batch, stride: batch > 0 ? Math.max(1, Math.floor(data.length / batch)) : 1 })
  }
  const n = tensors[0]?.batch ?? 0
  const rows: Array<Record<string, unknown>> = []
  for (let i = 0; i < n; i++) {
    const row: Record<string, unknown> = {}
    for (const t of tensors) row[t.name] = t.stride === 1 ? t.data[i] : t.data.slice(i * t.stride, (i + 1) * t.stride)
    rows.push(row)
  }
  return rows
}

function isNumbers (a: unknown[]): a is number[] {
  for (const v of a) if (typeof v !== 'number' || !Number.isFinite(v)) return false
  return true
}
