import { isObject, type JsonObject, type ResponseFormat } from './format.js'

/**
 * Open Inference Protocol v2 (KServe v2, Triton, MLServer): `POST /v2/models/<m>[/versions/<v>]/infer`
 * answers `{model_name, model_version, id, outputs: [{name, shape, datatype, data}]}` where `data`
 * is the tensor flattened row-major (nested lists are flattened too).
 *
 * - Outputs are paired **by name**, not position (the generic diff uses `keyBy: name` on `/outputs`).
 * - Instance i is the i-th slice along the first (batch) dimension of *every* output: with shape
 *   `[B, d1, …]` the slice is `data[i·s, (i+1)·s)` where `s = d1·…`. A slice of one element is
 *   compared as a scalar, a longer one as a vector (the output name is the key for the score
 *   heuristic, so `probabilities` or `predict_proba` are scores). A scalar output (shape `[]`) is
 *   one instance. An output present on one side only makes every instance disagree.
 * - `model_name` and `model_version` are ignored by default: they name the deployment, and a
 *   shadow is by definition another one.
 */
export const oipV2: ResponseFormat = {
  name: 'oip-v2',
  rules: [
    { pattern: '/outputs', arrays: { keyBy: 'name' } },
    { pattern: '/model_name', ignore: true },
    { pattern: '/model_version', ignore: true }
  ],
  detect (urlPath, body) {
    if (/\/v2\/models\/[^/]+(\/versions\/[^/]+)?\/infer$/.test(urlPath)) return true
    return isOipV2Body(body)
  },
  summarise (primary, shadow, cmp, tally) {
    const p = tensorsOf(primary)
    const s = tensorsOf(shadow)
    if (p === null && s === null) return false
    const bp = batchOf(p)
    const bs = batchOf(s)
    const names = new Set([...(p?.keys() ?? []), ...(s?.keys() ?? [])])
    const path: Array<string | number> = ['outputs', 0, 'data']
    for (let i = 0; i < Math.max(bp, bs); i++) {
      if (i >= bp || i >= bs) { cmp.absent(tally); continue }
      cmp.begin()
      for (const name of names) {
        const tp = p?.get(name)
        const ts = s?.get(name)
        if (tp === undefined || ts === undefined) { cmp.disagree(); continue }
        path[1] = tp.index
        cmp.field(sliceOf(tp, i), sliceOf(ts, i), path, name)
      }
      cmp.end(tally)
    }
    return true
  }
}

/** True for a body with a non-empty `outputs` list of `{name, data}` tensors. */
export function isOipV2Body (body: unknown): boolean {
  if (!isObject(body) || !Array.isArray(body.outputs) || body.outputs.length === 0) return false
  const first: unknown = body.outputs[0]
  return isObject(first) && typeof first.name === 'string' && 'data' in first
}

interface Tensor { index: number, data: unknown[], batch: number, stride: number }

function tensorsOf (body: unknown): Map<string, Tensor> | null {
  if (!isOipV2Body(body)) return null
  const out = new Map<string, Tensor>()
  const outputs = (body as JsonObject).outputs as unknown[]
  outputs.forEach((o, index) => {
    if (!isObject(o) || typeof o.name !== 'string' || out.has(o.name)) return
    const data = flatten(o.data)
    const shape = Array.isArray(o.shape) && o.shape.every((d) => typeof d === 'number') ? o.shape as number[] : [data.length]
    const batch = shape.length === 0 ? 1 : shape[0] as number
    const stride = batch > 0 ? Math.max(1, Math.floor(data.length / batch)) : 1
    out.set(o.name, { index, data, batch, stride })
  })
  return out
}

/** The batch size: that of the first output (outputs of one response share the batch dimension). */
function batchOf (t: Map<string, Tensor> | null): number {
  if (t === null) return 0
  return t.values().next().value?.batch ?? 0
}

function sliceOf (t: Tensor, i: number): unknown {
  if (t.stride === 1) return t.data[i]
  return t.data.slice(i * t.stride, (i + 1) * t.stride)
}

function flatten (v: unknown): unknown[] {
  if (!Array.isArray(v)) return v === undefined ? [] : [v]
  if (!v.some(Array.isArray)) return v
  return (v as unknown[]).flat(Infinity)
}
