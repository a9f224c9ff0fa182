import type { InstanceComparer, InstanceTally } from '../instance.js'
import type { PathRuleSpec } from '../rules.js'
import type { CompareFormat } from '../../config/schema.js'
import type { LlmApi } from '../llm/answer.js'

/** A format that can actually be applied (`auto` resolves to one of these). */
export type ConcreteFormat = Exclude<CompareFormat, 'auto'>

/** A model-serving response format: how to recognise it and how to split it into instances. */
export interface ResponseFormat {
  readonly name: ConcreteFormat
  /**
   * Rules the format brings (default ignores, text paths, keyed arrays). They are applied beneath
   * the user's: a `compare.paths` rule on the same pattern wins, so `{"/model": {ignore: false}}`
   * turns a default ignore off.
   */
  readonly rules: readonly PathRuleSpec[]
  /**
   * Set by the LLM formats: the API whose bodies (streamed or not) the comparator normalises and
   * compares by agreement kind instead of calling `summarise` on the raw bodies.
   */
  readonly llm?: LlmApi
  /** Whether a response `body` to a request for `urlPath` (no query) looks like this format. */
  detect (urlPath: string, body: unknown): boolean
  /**
   * Compares the bodies instance by instance into `tally`. A side without the format's shape
   * contributes no instances, so all of the other side's count as disagreements. Returns false
   * when neither side has the shape (the caller then falls back to one whole-body instance).
   */
  summarise (primary: unknown, shadow: unknown, cmp: InstanceComparer, tally: InstanceTally): boolean
}

export type JsonObject = Record<string, unknown>

export function isObject (v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The columns of a column-oriented table `{col: [v0, v1, …]}`, or null when some value is not an array. */
export function asColumns (v: unknown): Record<string, unknown[]> | null {
  if (!isObject(v)) return null
  let any = false
  for (const k in v) {
    if (!Array.isArray(v[k])) return null
    any = true
  }
  return any ? v as Record<string, unknown[]> : null
}

/**
 * Compares two instance lists position by position. `base` is the pointer of the list in the
 * document; a position present on one side only is a disagreement.
 */
export function compareLists (p: unknown[] | null, s: unknown[] | null, base: readonly string[], cmp: InstanceComparer, tally: InstanceTally): boolean {
  if (p === null && s === null) return false
  const np = p?.length ?? 0
  const ns = s?.length ?? 0
  const path: Array<string | number> = [...base, 0]
  const last = base.length
  for (let i = 0; i < Math.max(np, ns); i++) {
    if (i >= np || i >= ns) { cmp.absent(tally); continue }
    path[last] = i
    cmp.instance((p as unknown[])[i], (s as unknown[])[i], path, tally)
  }
  return true
}

/**
 * Compares two column tables row by row: row i is `{col: table[col][i]}`. Each column is a field
 * of the instance at `<base>/<col>/<i>`; a column on one side only makes every row disagree.
 */
export function compareColumns (p: Record<string, unknown[]> | null, s: Record<string, unknown[]> | null, base: readonly string[], cmp: InstanceComparer, tally: InstanceTally): boolean {
  if (p === null && s === null) return false
  const np = rowCount(p)
  const ns = rowCount(s)
  const cols = new Set([...Object.keys(p ?? {}), ...Object.keys(s ?? {})])
  const path: Array<string | number> = [...base, '', 0]
  const last = base.length
  for (let i = 0; i < Math.max(np, ns); i++) {
    if (i >= np || i >= ns) { cmp.absent(tally); continue }
    cmp.begin()
    for (const col of cols) {
      const pc = p?.[col]
      const sc = s?.[col]
      if (pc === undefined || sc === undefined || i >= pc.length || i >= sc.length) { cmp.disagree(); continue }
      path[last] = col
      path[last + 1] = i
      cmp.field(pc[i], sc[i], path, col)
    }
    cmp.end(tally)
  }
  return true
}

function rowCount (t: Record<string, unknown[]> | null): number {
  let n = 0
  for (const k in t) n = Math.max(n, (t[k] as unknown[]).length)
  return n
}

/** The path part of a request URL (no query, no fragment). */
export function urlPathOf (url: string): string {
  const q = url.indexOf('?')
  const h = url.indexOf('#')
  const end = q === -1 ? (h === -1 ? url.length : h) : (h === -1 ? q : Math.min(q, h))
  return url.slice(0, end)
}
