import type { IncomingMessage } from 'node:http'
import { PenumbraError } from '../errors.js'
import { hasRequestBody } from './headers.js'

/** What the refusals need of the proxy's settings. */
export interface PolicyOptions {
  /** Our `Via` pseudonym (RFC 9110 §7.6.3). */
  via: string
  loopDetection: boolean
}

/**
 * The refusals every request gets before it is routed, plain HTTP and WebSocket/Upgrade alike
 * (one policy, so an upgrade cannot be used to get around it). Null: forward it.
 */
export function requestRefusal (req: IncomingMessage, opts: PolicyOptions): PenumbraError | null {
  if (req.httpVersionMajor !== 1) {
    // llhttp accepts an HTTP/0.9 request line (no version) and any 1-digit major version. The
    // HTTP/1 listener speaks HTTP/1.0 and 1.1 only (RFC 9110 §15.6.6): forwarding `GET /x` as
    // HTTP/1.1, or an HTTP/2.0 request line, would forward a message this hop cannot frame.
    return new PenumbraError('PENUMBRA_HTTP_VERSION_NOT_SUPPORTED', `HTTP/${req.httpVersion} is not supported: use HTTP/1.0 or HTTP/1.1`)
  }
  const url = req.url ?? '/'
  if (url.charCodeAt(0) !== 47 /* '/' */) {
    // Absolute-form and authority-form targets are for forward proxies (RFC 9112 §3.2.2).
    return new PenumbraError('PENUMBRA_BAD_REQUEST', 'the request target must be a path')
  }
  if (opts.loopDetection && viaNames(req.headers.via, opts.via)) {
    // RFC 9110 §7.6.3: our own pseudonym in Via means this request already passed here.
    return new PenumbraError('PENUMBRA_LOOP_DETECTED', `the request already passed through "${opts.via}" (Via); give chained proxies distinct proxy.via names`)
  }
  return null
}

/**
 * What only an upgrade is refused for: a WebSocket opening handshake is a GET without a body
 * (RFC 6455 §4.1). A body sent with it would reach the upstream as the first bytes of the new
 * protocol (or of the next request), so it is refused rather than dropped; other protocols (h2c)
 * are not tunnelled by this hop.
 */
export function upgradeRefusal (req: IncomingMessage): PenumbraError | null {
  if (hasRequestBody(req)) return new PenumbraError('PENUMBRA_BAD_REQUEST', 'an upgrade request must not carry a body (RFC 6455 §4.1)')
  if (req.method !== 'GET' || String(req.headers.upgrade).toLowerCase() !== 'websocket') {
    return new PenumbraError('PENUMBRA_BAD_REQUEST', 'only WebSocket upgrades (GET with Upgrade: websocket) are forwarded')
  }
  return null
}

/** True when a `Via` entry (`protocol received-by [comment]`) was received by `pseudonym`. */
export function viaNames (via: string | string[] | undefined, pseudonym: string): boolean {
  if (via === undefined) return false
  for (const entry of (Array.isArray(via) ? via.join(',') : via).split(',')) {
    const parts = entry.trim().split(/\s+/)
    if (parts[1] === pseudonym) return true
  }
  return false
}
