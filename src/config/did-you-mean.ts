import { closest, distance } from 'fastest-levenshtein'
import type { z } from 'zod'

/** Wrappers whose inner schema holds the object keys (zod 4 `_zod.def.type`s). */
const WRAPPERS = new Set(['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch', 'nonoptional'])

interface Def { type: string, shape?: Record<string, Schema>, innerType?: Schema, element?: Schema, valueType?: Schema, options?: Schema[], in?: Schema, out?: Schema }
interface Schema { _zod: { def: Def } }

/** Unwraps defaults, optionals and pipes down to the schema that decides. */
function unwrap (s: Schema): Schema {
  let cur = s
  for (let i = 0; i < 20; i++) {
    const d = cur._zod.def
    if (WRAPPERS.has(d.type) && d.innerType !== undefined) cur = d.innerType
    else if (d.type === 'pipe' && d.in !== undefined) cur = d.in
    else break
  }
  return cur
}

/** The keys an object schema accepts at `path` (array indices and record keys step inside), or []. */
export function knownKeys (root: z.ZodType, path: ReadonlyArray<PropertyKey>): string[] {
  const candidates: Schema[] = [root as unknown as Schema]
  let level: Schema[] = candidates
  for (const seg of path) {
    const next: Schema[] = []
    for (const s of level) {
      const u = unwrap(s)
      const d = u._zod.def
      if (d.type === 'object' && typeof seg === 'string' && d.shape?.[seg] !== undefined) next.push(d.shape[seg])
      else if (d.type === 'array' && typeof seg === 'number' && d.element !== undefined) next.push(d.element)
      else if (d.type === 'record' && d.valueType !== undefined) next.push(d.valueType)
      else if (d.type === 'union' && d.options !== undefined) {
        // A union (the legacy `primary` object or a name): try each branch at this same step.
        for (const o of d.options) {
          const od = unwrap(o)._zod.def
          if (od.type === 'object' && typeof seg === 'string' && od.shape?.[seg] !== undefined) next.push(od.shape[seg])
        }
      }
    }
    level = next
  }
  const keys = new Set<string>()
  for (const s of level) {
    const d = unwrap(s)._zod.def
    if (d.type === 'object' && d.shape !== undefined) for (const k of Object.keys(d.shape)) keys.add(k)
    if (d.type === 'union' && d.options !== undefined) {
      for (const o of d.options) {
        const od = unwrap(o)._zod.def
        if (od.type === 'object' && od.shape !== undefined) for (const k of Object.keys(od.shape)) keys.add(k)
      }
    }
  }
  return [...keys]
}

/**
 * The known key a typo most likely meant: the closest by edit distance, case ignored, when it is
 * within 2 edits (`sampleRat` → `sampleRate`, `timeoutMS` → `timeoutMs`); else null.
 */
export function didYouMean (key: string, known: readonly string[]): string | null {
  if (known.length === 0) return null
  const lower = known.map((k) => k.toLowerCase())
  const best = closest(key.toLowerCase(), lower)
  return distance(key.toLowerCase(), best) <= 2 ? known[lower.indexOf(best)]! : null
}
