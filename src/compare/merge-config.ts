import type { CompareConfig, CompareOverride } from '../config/schema.js'

/**
 * A shadow's effective compare config: its `compare` override over the top-level `compare`.
 *
 * - scalars (`enabled`, `format`, `arrays`, `statusCodes`, `maxBodyBytes`, `topK`,
 *   `textSimilarity`) replace;
 * - `numeric` and `noise` merge field by field;
 * - lists (`ignore`, `headers`) replace: a shadow that lists its own ignores states all of them;
 * - `paths` merges by pattern: the shadow's rule for a pattern replaces the base rule for that
 *   pattern, other base patterns stay;
 * - `mismatches` and `maxPending` are process-wide and not overridable.
 *
 * Keys whose value is `undefined` are treated as absent. Neither argument is modified.
 */
export function mergeCompareConfig (base: CompareConfig, override?: CompareOverride): CompareConfig {
  if (override === undefined) return base
  const o = defined(override)
  return {
    ...base,
    ...pick(o, ['enabled', 'format', 'arrays', 'statusCodes', 'maxBodyBytes', 'topK', 'textSimilarity', 'ignore', 'headers']),
    numeric: { ...base.numeric, ...defined(o.numeric ?? {}) },
    noise: { ...base.noise, ...defined(o.noise ?? {}) },
    paths: { ...base.paths, ...(o.paths ?? {}) }
  }
}

function defined<T extends object> (o: T): Partial<T> {
  const out: Partial<T> = {}
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v
  return out
}

function pick<T extends object, K extends keyof T> (o: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k]
  return out
}
