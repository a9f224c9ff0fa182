import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib'
import type { IncomingHttpHeaders } from 'node:http'

/** A decoded body: the parsed JSON value (`null` for an allowed empty body) or why it is unusable. */
export type DecodedBody =
  | { ok: true, value: unknown }
  | { ok: false, reason: BodyFailure }

/**
 * Why a body could not be compared. A fixed set of strings (no body content, no error text),
 * so that a reason is safe to log and to use as a metric label.
 */
export type BodyFailure =
  | 'body truncated at capture limit'
  | 'empty body'
  | 'body exceeds maxBodyBytes'
  | 'gzip failed to inflate'
  | 'deflate failed to inflate'
  | 'br failed to decompress'
  | 'unsupported content-encoding'
  | 'invalid UTF-8'
  | 'invalid JSON'
  | 'stream truncated'
  | 'stream reported an error'
  | 'invalid event stream'

/** Statuses whose responses have no content by definition (RFC 9110 §15.3.5, §15.3.6, §15.4.5). */
const NO_CONTENT_STATUS = new Set([204, 205, 304])

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Reads a header that may arrive as a list, as one comma-joined string. */
export function headerValue (headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name]
  if (v === undefined) return undefined
  return Array.isArray(v) ? v.join(', ') : String(v)
}

/**
 * Undoes the `Content-Encoding` codings (last applied first), with output capped at `maxBytes`.
 * `identity` is skipped; any other unknown coding is a failure.
 */
export function decompress (body: Buffer, contentEncoding: string | undefined, maxBytes: number): { ok: true, bytes: Buffer } | { ok: false, reason: BodyFailure } {
  if (contentEncoding === undefined || contentEncoding === '') return { ok: true, bytes: body }
  const codings = contentEncoding.toLowerCase().split(',').map((c) => c.trim()).filter((c) => c !== '' && c !== 'identity')
  let bytes = body
  const opts = { maxOutputLength: maxBytes }
  for (let i = codings.length - 1; i >= 0; i--) {
    const coding = codings[i]
    if (bytes.length === 0) return { ok: true, bytes }
    try {
      if (coding === 'gzip' || coding === 'x-gzip') bytes = gunzipSync(bytes, opts)
      else if (coding === 'deflate') bytes = inflateDeflate(bytes, opts)
      else if (coding === 'br') bytes = brotliDecompressSync(bytes, opts)
      else return { ok: false, reason: 'unsupported content-encoding' }
    } catch (err) {
      if (isTooLarge(err)) return { ok: false, reason: 'body exceeds maxBodyBytes' }
      if (coding === 'br') return { ok: false, reason: 'br failed to decompress' }
      return { ok: false, reason: coding === 'deflate' ? 'deflate failed to inflate' : 'gzip failed to inflate' }
    }
  }
  return { ok: true, bytes }
}

/** HTTP `deflate` is zlib-wrapped (RFC 9110 §8.4.1.2), but some servers send raw deflate: accept both. */
function inflateDeflate (bytes: Buffer, opts: { maxOutputLength: number }): Buffer {
  try {
    return inflateSync(bytes, opts)
  } catch (err) {
    if (isTooLarge(err)) throw err
    return inflateRawSync(bytes, opts)
  }
}

function isTooLarge (err: unknown): boolean {
  return err instanceof RangeError || (err as { code?: string } | null)?.code === 'ERR_BUFFER_TOO_LARGE'
}

/** What decoding needs from a response or request (a `CapturedResponse` fits). */
export interface BodyInput {
  status?: number
  headers: IncomingHttpHeaders
  body: Buffer
  truncated?: boolean
}

/**
 * Decodes a captured body to a JSON value:
 * truncated → failure; `Content-Encoding` gzip/deflate/br undone (output capped at `maxBytes`);
 * empty → `null` for 204/205/304, failure otherwise; bytes must be valid UTF-8 (a leading BOM is
 * dropped) and then valid JSON. The content type is not consulted: JSON is JSON whatever the label
 * (the header itself can be compared through `compare.headers`).
 */
export function decodeBody (res: BodyInput, maxBytes: number): DecodedBody {
  if (res.truncated === true) return { ok: false, reason: 'body truncated at capture limit' }
  const raw = decompress(res.body, headerValue(res.headers, 'content-encoding'), maxBytes)
  if (!raw.ok) return raw
  const bytes = raw.bytes
  if (bytes.length === 0) {
    return res.status !== undefined && NO_CONTENT_STATUS.has(res.status)
      ? { ok: true, value: null }
      : { ok: false, reason: 'empty body' }
  }
  if (bytes.length > maxBytes) return { ok: false, reason: 'body exceeds maxBodyBytes' }
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    return { ok: false, reason: 'invalid UTF-8' }
  }
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch {
    return { ok: false, reason: 'invalid JSON' }
  }
}

/**
 * The body as text for display when it is not JSON: decompressed when possible, decoded as UTF-8
 * with replacement characters, cut at `maxChars`.
 */
export function bodyAsText (res: BodyInput, maxBytes: number, maxChars: number): string {
  const raw = decompress(res.body, headerValue(res.headers, 'content-encoding'), maxBytes)
  const bytes = raw.ok ? raw.bytes : res.body
  const text = bytes.subarray(0, maxChars * 4).toString('utf8')
  return text.length > maxChars ? text.slice(0, maxChars) : text
}
