import { asColumns, compareColumns, compareLists, isObject, type ResponseFormat } from './format.js'
import { isOipV2Body } from './oip-v2.js'

/**
 * TF Serving / KServe v1 ("V1 protocol"). Request `{instances: [...]}` answers
 * `{predictions: [...]}`, one prediction per instance; the column-oriented request `{inputs}`
 * answers `{outputs}`, either a list (one entry per instance) or a map of named output tensors,
 * each a list over the batch (row i takes element i of every tensor).
 *
 * Recognised by a path ending in `:predict` or containing `/v1/models/`, or by a top-level
 * `predictions` list or TF Serving `outputs` (a list or a map of lists, not OIP v2 tensors). A prediction may be a label, a number, a score vector or an object such as
 * `{label, scores, latency_ms}`; see {@link InstanceComparer} for how each is judged.
 */
export const kserveV1: ResponseFormat = {
  name: 'kserve-v1',
  rules: [],
  detect (urlPath, body) {
    if (urlPath.endsWith(':predict') || urlPath.includes('/v1/models/')) return true
    return shapeOf(body) !== null
  },
  summarise (primary, shadow, cmp, tally) {
    const p = shapeOf(primary)
    const s = shapeOf(shadow)
    if (p?.columns !== undefined || s?.columns !== undefined) {
      return compareColumns(p?.columns ?? null, s?.columns ?? null, ['outputs'], cmp, tally)
    }
    const base = p?.base ?? s?.base ?? 'predictions'
    return compareLists(p?.list ?? null, s?.list ?? null, [base], cmp, tally)
  }
}

interface Shape { base: string, list?: unknown[], columns?: Record<string, unknown[]> }

function shapeOf (body: unknown): Shape | null {
  if (!isObject(body)) return null
  if (Array.isArray(body.predictions)) return { base: 'predictions', list: body.predictions }
  if (!('outputs' in body) || isOipV2Body(body)) return null
  const out = body.outputs
  if (Array.isArray(out)) return { base: 'outputs', list: out }
  const columns = asColumns(out)
  return columns === null ? null : { base: 'outputs', columns }
}
