import type { IncomingHttpHeaders } from 'node:http'
import { parsePointer, WILDCARD } from './json-pointer.js'

/** What a redacted value is replaced with. */
export const REDACTED = '[REDACTED]'

/** Header values as stored: multi-valued headers stay lists. */
export type StoredHeaders = Record<string, string | string[]>

/**
 * A copy of `headers` with the values of the named headers (lower-case) replaced by
 * {@link REDACTED}. Header names are lower-cased in the copy.
 */
export function redactHeaders (headers: IncomingHttpHeaders, names: ReadonlySet<string>): StoredHeaders {
  const out: StoredHeaders = {}
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue
    const name = k.toLowerCase()
    out[name] = names.has(name) ? REDACTED : v
  }
  return out
}

/**
 * The request target (path and query) with the values of the named query parameters replaced by
 * {@link REDACTED}: names compared case-insensitively after percent-decoding; `*` in `names`
 * matches every parameter. The path and the order and names of the parameters are kept.
 */
export function redactQuery (url: string, names: ReadonlySet<string>): string {
  const q = url.indexOf('?')
  if (q === -1 || names.size === 0) return url
  const all = names.has('*')
  const params = url.slice(q + 1).split('&')
  let changed = false
  for (let i = 0; i < params.length; i++) {
    const p = params[i] as string
    const eq = p.indexOf('=')
    if (eq === -1) continue // a bare flag has no value to hide
    if (all || names.has(decodeName(p.slice(0, eq)))) {
      params[i] = p.slice(0, eq + 1) + REDACTED
      changed = true
    }
  }
  return changed ? url.slice(0, q + 1) + params.join('&') : url
}

function decodeName (raw: string): string {
  try {
    return decodeURIComponent(raw.replaceAll('+', ' ')).toLowerCase()
  } catch {
    return raw.toLowerCase() // malformed escapes: compare as written
  }
}

/** Pattern pointers compiled for {@link redactValue}. */
export type RedactionPatterns = ReadonlyArray<readonly string[]>

/** @throws {SyntaxError} for a malformed pointer. */
export function compileRedactions (pointers: readonly string[]): RedactionPatterns {
  return pointers.map(parsePointer)
}

/**
 * A copy of a parsed JSON value with every value matched by a pattern (a `*` segment matches any
 * index or key) replaced by {@link REDACTED}. Copy on write: only the containers on a matched
 * path are copied, the input is never modified. A pattern that matches nothing changes nothing;
 * the empty pattern `""` redacts the whole value.
 */
export function redactValue (value: unknown, patterns: RedactionPatterns): unknown {
  let out = value
  for (const segs of patterns) out = redactAt(out, segs, 0)
  return out
}

function redactAt (v: unknown, segs: readonly string[], i: number): unknown {
  if (i === segs.length) return REDACTED
  if (typeof v !== 'object' || v === null) return v
  const seg = segs[i] as string
  if (Array.isArray(v)) {
    let copy: unknown[] | null = null
    const set = (idx: number): void => {
      const next = redactAt(v[idx], segs, i + 1)
      if (next !== v[idx]) { copy ??= v.slice(); copy[idx] = next }
    }
    if (seg === WILDCARD) for (let k = 0; k < v.length; k++) set(k)
    else if (/^(0|[1-9][0-9]*)$/.test(seg) && Number(seg) < v.length) set(Number(seg))
    return copy ?? v
  }
  const obj = v as Record<string, unknown>
  let copy: Record<string, unknown> | null = null
  const keys = seg === WILDCARD ? Object.keys(obj) : Object.hasOwn(obj, seg) ? [seg] : []
  for (const k of keys) {
    const next = redactAt(obj[k], segs, i + 1)
    if (next !== obj[k]) { copy ??= { ...obj }; copy[k] = next }
  }
  return copy ?? v
}
