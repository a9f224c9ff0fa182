import { asColumns, compareColumns, compareLists, isObject, type ResponseFormat } from './format.js'

/**
 * MLflow scoring server (`POST /invocations`). MLflow 2 answers `{predictions: [...]}` (a list of
 * scalars, vectors or records) or, for a DataFrame output, `{predictions: {col: [...]}}`
 * column-oriented; MLflow 1 answered a bare list. Row i of a column table takes element i of
 * every column.
 *
 * Recognised by a path ending in `/invocations`, or by `predictions` being a column table
 * (which KServe v1 never sends).
 */
export const mlflow: ResponseFormat = {
  name: 'mlflow',
  rules: [],
  detect (urlPath, body) {
    if (urlPath.endsWith('/invocations')) return true
    return isObject(body) && asColumns(body.predictions) !== null
  },
  summarise (primary, shadow, cmp, tally) {
    const p = shapeOf(primary)
    const s = shapeOf(shadow)
    if (p?.columns !== undefined || s?.columns !== undefined) {
      return compareColumns(p?.columns ?? null, s?.columns ?? null, ['predictions'], cmp, tally)
    }
    return compareLists(p?.list ?? null, s?.list ?? null, p?.base ?? s?.base ?? [], cmp, tally)
  }
}

interface Shape { base: string[], list?: unknown[], columns?: Record<string, unknown[]> }

function shapeOf (body: unknown): Shape | null {
  if (Array.isArray(body)) return { base: [], list: body }
  if (!isObject(body)) return null
  const pred = body.predictions
  if (Array.isArray(pred)) return { base: ['predictions'], list: pred }
  const columns = asColumns(pred)
  // Anything else (a single object, a scalar) is left to the whole-body fallback.
  return columns === null ? null : { base: ['predictions'], columns }
}
