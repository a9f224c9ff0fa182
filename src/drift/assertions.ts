import { createHash } from 'node:crypto'
import stringify from 'fast-json-stable-stringify'
import type { ValidateFunction } from 'ajv'
import { LRUCache } from 'lru-cache'
import type { AssertionConfig, RuleKind } from '../config/drift-schema.js'
import { parsePointer, WILDCARD } from '../compare/json-pointer.js'
import { compileSchemaRule, firstError } from './schema-rule.js'
import { at } from './digest.js'

/** What a rule needs besides the value: the model, and the input the instance answered (for `stable`). */
export interface CheckContext {
  model: string
  /** A hash of the instance's input, or null when it cannot be paired with one. */
  inputKey: string | null
  now: number
}

/** A compiled assertion: `check` returns null when the value passes, else why not (one line). */
export interface Assertion {
  readonly name: string
  readonly kind: RuleKind
  /** As configured (the pointer into each instance). */
  readonly path: string
  readonly models: ReadonlySet<string> | null
  readonly needsInput: boolean
  /** The value at `path` in an instance (undefined when absent). */
  valueOf (instance: unknown): unknown
  check (value: unknown, ctx: CheckContext): string | null
}

const MISSING = 'missing (no value at the path)'

/**
 * Compiles one configured assertion (Kang et al.'s model assertions, docs/drift.md): `range`
 * (every number within min..max), `oneOf` (a scalar among the values), `sum` (the numbers at
 * `sum.path` under the value add up to `to` ± `tol`), `schema` (JSON Schema, ajv, compiled
 * once), `stable` (the same input within `windowMs` gets the same value; a bounded LRU of
 * input hash → first value, per model). A missing value violates every rule but `stable`.
 */
export function compileAssertion (a: AssertionConfig): Assertion {
  const segs = parsePointer(a.path)
  const base = {
    name: a.name,
    path: a.path,
    models: a.models === undefined ? null : new Set(a.models),
    valueOf: (instance: unknown) => at(instance, segs)
  }
  const r = a.rule
  if (r.range !== undefined) {
    const { min, max } = r.range
    return { ...base, kind: 'range', needsInput: false, check: (v) => checkRange(v, min, max) }
  }
  if (r.oneOf !== undefined) {
    const allowed = new Set<unknown>(r.oneOf)
    const shown = r.oneOf.map((x) => JSON.stringify(x)).join(', ')
    return {
      ...base,
      kind: 'oneOf',
      needsInput: false,
      check: (v) => v === undefined ? MISSING : allowed.has(v) ? null : `${short(v)} is not one of ${shown}`
    }
  }
  if (r.sum !== undefined) {
    const { to, tol } = r.sum
    const sumSegs = parsePointer(r.sum.path)
    return { ...base, kind: 'sum', needsInput: false, check: (v) => checkSum(v, sumSegs, to, tol) }
  }
  if (r.schema !== undefined) {
    const validate = compileSchemaRule(r.schema).validate as ValidateFunction
    return { ...base, kind: 'schema', needsInput: false, check: (v) => v === undefined ? MISSING : validate(v) ? null : firstError(validate) }
  }
  const st = r.stable === true || r.stable === undefined ? { windowMs: 60 * 60 * 1000, maxEntries: 100_000 } : r.stable
  const seen = new LRUCache<string, { value: string, at: number }>({ max: st.maxEntries, ttl: st.windowMs, ttlAutopurge: false })
  return {
    ...base,
    kind: 'stable',
    needsInput: true,
    check: (v, ctx) => {
      if (ctx.inputKey === null) return null // not paired with an input: not checked (counted as skipped by the caller)
      const text = v === undefined ? 'undefined' : stringify(v)
      const key = `${ctx.model}\u0000${ctx.inputKey}`
      const first = seen.get(key)
      if (first === undefined) { seen.set(key, { value: text, at: ctx.now }); return null }
      if (first.value === text) return null
      return `${cut(text)} for an input that got ${cut(first.value)} ${Math.round((ctx.now - first.at) / 1000)} s before`
    }
  }
}

/**
 * A stable key of an instance's input (the same input, in any key order, gives the same key):
 * its canonical JSON when short, else a SHA-256 of it (hashing costs more than a short key's memory).
 */
export function inputKeyOf (input: unknown): string {
  const text = stringify(input) ?? 'undefined'
  return text.length <= 96 ? text : createHash('sha256').update(text).digest('base64url').slice(0, 22)
}

function checkRange (v: unknown, min: number | null, max: number | null): string | null {
  if (v === undefined) return MISSING
  const nums = typeof v === 'number' ? [v] : Array.isArray(v) && allNumbers(v) ? v : null
  if (nums === null) return `${short(v)} is not a number or a list of numbers`
  for (let i = 0; i < nums.length; i++) {
    const x = nums[i] as number
    if (Number.isFinite(x) && (min === null || x >= min) && (max === null || x <= max)) continue
    const where = nums.length > 1 ? `[${i}] ` : ''
    if (!Number.isFinite(x)) return `${where}${x} is not finite`
    return min !== null && x < min ? `${where}${x} < min ${min}` : `${where}${x} > max ${max as number}`
  }
  return null
}

function checkSum (v: unknown, segs: readonly string[], to: number, tol: number): string | null {
  if (v === undefined) return MISSING
  const nums: number[] = []
  collect(v, segs, 0, nums)
  if (segs.length === 0 && Array.isArray(v)) { nums.length = 0; for (const x of v) if (typeof x === 'number') nums.push(x) }
  if (nums.length === 0) return 'no numbers to sum at the path'
  let s = 0
  for (const x of nums) s += x
  if (!(Math.abs(s - to) <= tol)) return `sums to ${round(s)}, not ${to} ± ${tol}`
  return null
}

/** The numbers matched by a pointer whose `*` segments match every index or key. */
function collect (v: unknown, segs: readonly string[], i: number, out: number[]): void {
  if (i === segs.length) {
    if (typeof v === 'number') out.push(v)
    return
  }
  if (typeof v !== 'object' || v === null) return
  const seg = segs[i] as string
  if (seg === WILDCARD) {
    for (const x of Array.isArray(v) ? v : Object.values(v)) collect(x, segs, i + 1, out)
    return
  }
  collect(Array.isArray(v) ? (/^(0|[1-9][0-9]*)$/.test(seg) ? v[Number(seg)] : undefined) : (v as Record<string, unknown>)[seg], segs, i + 1, out)
}

function allNumbers (v: unknown[]): v is number[] {
  for (const x of v) if (typeof x !== 'number') return false
  return true
}

function short (v: unknown): string {
  return cut(JSON.stringify(v) ?? String(v))
}

function cut (s: string): string {
  return s.length > 80 ? s.slice(0, 77) + '...' : s
}

function round (x: number): number {
  return Math.round(x * 1e6) / 1e6
}
