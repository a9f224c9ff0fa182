/**
 * RFC 6901 JSON Pointers, plus the one extension penumbra's config uses: a `*` segment in a
 * *pattern* matches any array index or object key. A literal key `*` therefore cannot be
 * addressed by a pattern; that is a deliberate trade for readable config.
 */

/** A path as a list of segments: numbers are array indices, strings are object keys. */
export type PathSegments = ReadonlyArray<string | number>

/** The pattern segment that matches any array index or object key. */
export const WILDCARD = '*'

/** Escapes one reference token: `~` → `~0`, then `/` → `~1` (RFC 6901 §3). */
export function escapeSegment (segment: string): string {
  // Most keys contain neither character; skip the two replace passes for them.
  if (segment.indexOf('~') === -1 && segment.indexOf('/') === -1) return segment
  return segment.replace(/~/g, '~0').replace(/\//g, '~1')
}

/** Unescapes one reference token: `~1` → `/`, then `~0` → `~` (RFC 6901 §4; this order is required). */
export function unescapeSegment (segment: string): string {
  if (segment.indexOf('~') === -1) return segment
  return segment.replace(/~1/g, '/').replace(/~0/g, '~')
}

/**
 * Splits a pointer into unescaped segments. `''` is the whole document (no segments).
 * @throws {SyntaxError} when the pointer is not empty and does not start with `/`.
 */
export function parsePointer (pointer: string): string[] {
  if (pointer === '') return []
  if (pointer[0] !== '/') throw new SyntaxError(`JSON Pointer must be empty or start with "/": ${JSON.stringify(pointer)}`)
  return pointer.slice(1).split('/').map(unescapeSegment)
}

/** Formats segments as a pointer; array indices are written in decimal. */
export function formatPointer (segments: PathSegments, length = segments.length): string {
  let out = ''
  for (let i = 0; i < length; i++) {
    const s = segments[i]
    out += '/' + (typeof s === 'number' ? String(s) : escapeSegment(s as string))
  }
  return out
}

const DIGITS = /^(0|[1-9][0-9]*)$/

/**
 * The metric/noise form of a pointer: every all-digit segment becomes `*`, so
 * `/predictions/3/scores/7` and `/predictions/12/scores/0` both become `/predictions/* /scores/*`
 * (without the space). All-digit object keys are folded too: they are usually ids, and folding
 * them keeps label cardinality bounded. The function is idempotent.
 */
export function normalisePath (pointer: string): string {
  if (!/\/[0-9]/.test(pointer)) return pointer
  const parts = pointer.split('/')
  for (let i = 1; i < parts.length; i++) {
    if (DIGITS.test(parts[i] as string)) parts[i] = WILDCARD
  }
  return parts.join('/')
}

/** A compiled pattern pointer: tests whether a concrete path matches it, segment for segment. */
export interface PointerMatcher {
  readonly pattern: string
  /** True when `path` has exactly as many segments as the pattern and each one matches. */
  matches (path: PathSegments): boolean
  /** True when the pattern matches `path` or one of its ancestors (the pattern covers its subtree). */
  covers (path: PathSegments): boolean
}

/**
 * Compiles a pattern pointer such as `/predictions/* /label` (no space) into a matcher.
 * @throws {SyntaxError} for a malformed pointer.
 */
export function compilePointer (pattern: string): PointerMatcher {
  const segs = parsePointer(pattern)
  const n = segs.length
  const prefixMatches = (path: PathSegments): boolean => {
    for (let i = 0; i < n; i++) {
      const want = segs[i] as string
      if (want === WILDCARD) continue
      const got = path[i]
      if (typeof got === 'number' ? want !== String(got) : want !== got) return false
    }
    return true
  }
  return {
    pattern,
    matches: (path) => path.length === n && prefixMatches(path),
    covers: (path) => path.length >= n && prefixMatches(path)
  }
}
