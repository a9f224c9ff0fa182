import type { IncomingMessage } from 'node:http'

/**
 * Sticky sampling hash (issue #3): the same key gives the same decision in every replica and
 * across restarts and Node versions. It is FNV-1a 32-bit over the UTF-8 bytes of
 * `${salt}:${key}`, followed by the murmur3 32-bit finaliser (fmix32) so that keys differing in
 * their last characters spread over the whole range, divided by 2^32:
 *
 *   u = fmix32(fnv1a32(utf8(salt + ":" + key))) / 4294967296      (u in [0, 1))
 *
 * A shadow mirrors the request when u < sampleRate. Test vectors (salt "penumbra") are in README
 * and test/sampler-unit.test.ts, e.g. key "user-1" → 0.35705054…, key "" → 0.45448808… .
 */
export function stickyUniform (salt: string, key: string): number {
  return new StickyHash(salt).of(key)
}

const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193

/**
 * {@link stickyUniform} with the salt hashed once: FNV-1a runs byte by byte, so the state after
 * `salt + ":"` is kept and each key continues from it. Keys that are ASCII (the usual user ids)
 * are hashed from their char codes without an encoding step; others through UTF-8 as before.
 * The same value as stickyUniform(salt, key), bit for bit.
 */
export class StickyHash {
  readonly #state: number

  constructor (salt: string) {
    this.#state = fnv(FNV_OFFSET, `${salt}:`)
  }

  /** u(salt, key) in [0, 1). */
  of (key: string): number {
    let h = fnv(this.#state, key)
    // fmix32 from MurmurHash3: avalanche the FNV state.
    h ^= h >>> 16
    h = Math.imul(h, 0x85ebca6b)
    h ^= h >>> 13
    h = Math.imul(h, 0xc2b2ae35)
    h ^= h >>> 16
    return (h >>> 0) / 4294967296
  }
}

/** FNV-1a over the UTF-8 bytes of `s`, continuing from state `h`. */
function fnv (h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x80) return fnvBytes(h, Buffer.from(s.slice(i), 'utf8'))
    h ^= c
    h = Math.imul(h, FNV_PRIME)
  }
  return h
}

function fnvBytes (h: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!
    h = Math.imul(h, FNV_PRIME)
  }
  return h
}

/** Where a shadow's sampling key comes from. */
export type SampleBy =
  | { kind: 'random' }
  | { kind: 'header', name: string }
  | { kind: 'cookie', name: string }
  | { kind: 'query', name: string }

/** Parses `random`, `header:<name>`, `cookie:<name>` or `query:<name>` (validated by the schema). */
export function parseSampleBy (value: string): SampleBy {
  if (value === 'random') return { kind: 'random' }
  const i = value.indexOf(':')
  const kind = value.slice(0, i)
  const name = value.slice(i + 1)
  if (kind === 'header') return { kind, name: name.toLowerCase() }
  if (kind === 'cookie' || kind === 'query') return { kind, name }
  throw new Error(`invalid sampleBy ${value}`)
}

/** Reads the sticky key of a request; undefined when the request does not carry it. */
export function sampleKey (by: SampleBy, req: IncomingMessage): string | undefined {
  switch (by.kind) {
    case 'random':
      return undefined
    case 'header': {
      const v = req.headers[by.name]
      return Array.isArray(v) ? v[0] : v
    }
    case 'cookie':
      return cookieValue(req.headers.cookie, by.name)
    case 'query':
      return queryValue(req.url ?? '', by.name)
  }
}

/**
 * The value of cookie `name` (RFC 6265 §4.2.1: `name=value` pairs split by `;`). A value may be
 * in double quotes (cookie-value = *cookie-octet / DQUOTE *cookie-octet DQUOTE, §4.1.1): the
 * quotes are not part of it, so `"abc"` and `abc` are the same unit for stickiness.
 */
function cookieValue (header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq === -1) continue
    if (part.slice(0, eq).trim() !== name) continue
    const v = part.slice(eq + 1).trim()
    return v.length >= 2 && v.charCodeAt(0) === 34 && v.charCodeAt(v.length - 1) === 34 ? v.slice(1, -1) : v
  }
  return undefined
}

function queryValue (url: string, name: string): string | undefined {
  const q = url.indexOf('?')
  if (q === -1) return undefined
  const v = new URLSearchParams(url.slice(q + 1)).get(name)
  return v === null ? undefined : v
}

/**
 * Glob on the path (query excluded): `*` matches within one segment, `**` across segments.
 * Compiled once per config.
 */
export function compilePathGlob (glob: string): RegExp {
  let re = '^'
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // `/**/` also matches zero segments (`/v1/**/infer` matches `/v1/infer`), as in gitignore.
        if (glob[i - 1] === '/' && glob[i + 2] === '/') { re = re.slice(0, -1) + '(?:/.*)?'; i++ } else { re += '.*'; i++ }
      } else re += '[^/]*'
    } else if (c === '?') {
      re += '[^/]'
    } else {
      re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
    }
  }
  return new RegExp(re + '$')
}
