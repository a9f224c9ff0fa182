import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { randomUUID } from 'node:crypto'

/**
 * Hop-by-hop headers: meaningful for one connection only, so a proxy removes them in both
 * directions (RFC 9110 §7.6.1; Proxy-Authorization/-Authenticate: §11.7; Proxy-Connection and
 * Keep-Alive are legacy hop-by-hop names). `expect` is also dropped on the way up: Node's server
 * already answered `100 Continue` for us (RFC 9110 §10.1.1) and undici refuses the header.
 * `http2-settings` only means something on an h2c upgrade, which this hop does not do.
 */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'http2-settings'
])

/**
 * Headers penumbra itself sets on the way up (the shadow marker; the experiment assignment and
 * the fault tag are reserved for those features): a client's own copy would reach the primary
 * as if penumbra had set it, and a shadow would receive two values (issue #21).
 */
const PENUMBRA_SET = ['x-penumbra-shadow', 'x-penumbra-experiment', 'x-penumbra-fault']

const REQUEST_DROP = new Set([...HOP_BY_HOP, ...PENUMBRA_SET, 'host', 'expect', 'via'])
/** Replaced by ours when `proxy.xForwarded` is on; passed through untouched when it is off. */
const X_FORWARDED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'])

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** Names listed in `Connection` (comma-separated tokens), lower-cased; null when there are none. */
export function connectionListed (value: string | string[] | undefined): Set<string> | null {
  if (value === undefined) return null
  const joined = Array.isArray(value) ? value.join(',') : value
  let set: Set<string> | null = null
  for (const raw of joined.split(',')) {
    const name = raw.trim().toLowerCase()
    if (name === '' || !TOKEN.test(name) || name === 'close' || name === 'keep-alive') continue
    ;(set ??= new Set()).add(name)
  }
  return set
}

/** Settings for building upstream request headers; validated once at construction. */
export interface RequestHeaderOptions {
  /** `Via` pseudonym (RFC 9110 §7.6.3). */
  via: string
  /** Send X-Forwarded-For/-Proto/-Host. */
  xForwarded: boolean
  /** The request-id header name, lower-case. */
  requestIdHeader: string
  /** Keep the client's Host instead of the upstream's (the upstream's is undici's default). */
  preserveHost: boolean
}

const REQUEST_ID = /^[A-Za-z0-9._:@+=/-]{1,128}$/

/** The client's request id when it is sane (1..128 chars, URL-safe set), else a new UUID. */
export function requestIdFor (value: string | string[] | undefined): string {
  if (typeof value === 'string' && REQUEST_ID.test(value)) return value
  return randomUUID()
}

/**
 * Builds the flat header list sent upstream from the client's raw headers: end-to-end headers are
 * kept exactly (order, case, duplicates), hop-by-hop and Connection-listed ones are removed
 * *before* the proxy adds its own (so a client cannot use Connection to strip them), then
 * X-Forwarded-*, Via and the request id are added.
 */
export function upstreamRequestHeaders (req: IncomingMessage, requestId: string, opts: RequestHeaderOptions): string[] {
  const raw = req.rawHeaders
  const listed = connectionListed(req.headers.connection)
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const lower = name.toLowerCase()
    if (REQUEST_DROP.has(lower)) continue
    if (opts.xForwarded && X_FORWARDED.has(lower)) continue
    if (listed !== null && listed.has(lower)) continue
    if (lower === opts.requestIdHeader) continue
    out.push(name, raw[i + 1]!)
  }
  const h = req.headers
  if (opts.preserveHost && h.host !== undefined) out.push('host', h.host)
  if (opts.xForwarded) {
    const peer = req.socket.remoteAddress ?? 'unknown'
    const prior = h['x-forwarded-for']
    out.push('x-forwarded-for', prior === undefined ? peer : `${Array.isArray(prior) ? prior.join(', ') : prior}, ${peer}`)
    out.push('x-forwarded-proto', (req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http')
    if (h.host !== undefined) out.push('x-forwarded-host', h.host)
  }
  const via = h.via
  const hop = `${req.httpVersion} ${opts.via}`
  out.push('via', via === undefined ? hop : `${Array.isArray(via) ? via.join(', ') : via}, ${hop}`)
  out.push(opts.requestIdHeader, requestId)
  return out
}

/**
 * Removes hop-by-hop and Connection-listed headers from an upstream response (in place; undici
 * hands us a fresh object per response) and adds `Via` and the request id.
 */
export function clientResponseHeaders (headers: IncomingHttpHeaders, httpVersion: string, requestId: string, opts: RequestHeaderOptions): IncomingHttpHeaders {
  const listed = connectionListed(headers.connection)
  if (listed !== null) for (const name of listed) delete headers[name]
  for (const name of HOP_BY_HOP) if (headers[name] !== undefined) delete headers[name]
  const via = headers.via
  const hop = `${httpVersion} ${opts.via}`
  headers.via = via === undefined ? hop : `${Array.isArray(via) ? via.join(', ') : via}, ${hop}`
  headers[opts.requestIdHeader] = requestId
  return headers
}

/** True when the request carries a body (RFC 9112 §6.3: Transfer-Encoding, or Content-Length > 0). */
export function hasRequestBody (req: IncomingMessage): boolean {
  const h = req.headers
  if (h['transfer-encoding'] !== undefined) return true
  const cl = h['content-length']
  return cl !== undefined && cl !== '0'
}

/**
 * The response head relayed to a WebSocket/Upgrade client, from the upstream's raw headers (order,
 * case and duplicates kept) under the same hop-by-hop policy as `clientResponseHeaders`. A 101
 * keeps `Upgrade` and gets `Connection: upgrade` (RFC 9110 §7.8: they belong to the protocol
 * switch itself); any other answer ends the exchange, so it gets `Connection: close` and its body
 * is delimited by the close (RFC 9112 §6.3), `Transfer-Encoding` being this hop's framing.
 */
export function upgradeResponseHead (status: number, reason: string, rawHeaders: string[], requestId: string, opts: RequestHeaderOptions): string {
  const switching = status === 101
  let listed: Set<string> | null = null
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== 'connection') continue
    for (const name of connectionListed(rawHeaders[i + 1]) ?? []) (listed ??= new Set()).add(name)
  }
  let head = `HTTP/1.1 ${status} ${reason}\r\n`
  let via: string | null = null
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    const lower = name.toLowerCase()
    if (lower === 'via') { via = via === null ? rawHeaders[i + 1]! : `${via}, ${rawHeaders[i + 1]!}`; continue }
    if (lower === opts.requestIdHeader) continue
    if (switching && lower === 'upgrade') { head += `${name}: ${rawHeaders[i + 1]!}\r\n`; continue }
    if (HOP_BY_HOP.has(lower) || (listed !== null && listed.has(lower))) continue
    head += `${name}: ${rawHeaders[i + 1]!}\r\n`
  }
  const hop = `1.1 ${opts.via}`
  head += `via: ${via === null ? hop : `${via}, ${hop}`}\r\n${opts.requestIdHeader}: ${requestId}\r\n`
  head += switching ? 'connection: upgrade\r\n\r\n' : 'connection: close\r\n\r\n'
  return head
}
