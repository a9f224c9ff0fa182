import { z } from 'zod'

/** A value's override: every key optional, and nested objects (numeric, noise) partial too. */
export type DeepPartial<T> = {
  // Lists and records (an index signature: `string extends keyof`) are replaced whole.
  [K in keyof T]?: T[K] extends unknown[] ? T[K] : T[K] extends Record<string, unknown> ? (string extends keyof T[K] ? T[K] : DeepPartial<T[K]>) : T[K]
}

interface Def { type: string, innerType?: z.ZodType, shape?: Record<string, z.ZodType> }
const def = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def

/** The schema under its `.default()` / `.prefault()`: an override has no defaults of its own. */
function withoutDefault (s: z.ZodType): z.ZodType {
  let cur = s
  while (def(cur).type === 'default' || def(cur).type === 'prefault') cur = def(cur).innerType!
  return cur
}

/**
 * The override schema of some keys of an object shape: the same validation (and messages), no
 * defaults, every key optional; a nested object becomes its own override (merged field by field
 * by the caller), lists and records stay whole (replaced). Derived, so a key added to the base
 * schema is overridable without being declared twice.
 */
export function overridable<S extends Record<string, z.ZodType>, K extends keyof S & string> (shape: S, keys: readonly K[]): z.ZodType<DeepPartial<{ [P in K]: z.output<S[P]> }>> {
  const out: Record<string, z.ZodType> = {}
  for (const k of keys) out[k] = partialOf(withoutDefault(shape[k]!)).optional()
  return z.strictObject(out) as unknown as z.ZodType<DeepPartial<{ [P in K]: z.output<S[P]> }>>
}

function partialOf (s: z.ZodType): z.ZodType {
  const d = def(s)
  if (d.type !== 'object' || d.shape === undefined) return s
  const out: Record<string, z.ZodType> = {}
  for (const [k, f] of Object.entries(d.shape)) out[k] = partialOf(withoutDefault(f)).optional()
  return z.strictObject(out)
}
