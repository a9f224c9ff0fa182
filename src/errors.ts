/**
 * Every error penumbra reports to a client or an operator carries a stable `code`. The table of
 * codes (README "Error codes") is part of the public interface: codes are never reused or renamed.
 */
export const ErrorCodes = {
  /** The primary refused the connection, reset it, or could not be resolved. */
  PENUMBRA_UPSTREAM_UNAVAILABLE: 502,
  /** The primary sent something that is not valid HTTP. */
  PENUMBRA_UPSTREAM_BAD_RESPONSE: 502,
  /** The primary did not answer (headers) within `primary.timeoutMs`, or connecting timed out. */
  PENUMBRA_UPSTREAM_TIMEOUT: 504,
  /** The request loops through this proxy (our pseudonym already in `Via`). */
  PENUMBRA_LOOP_DETECTED: 508,
  /** The request could not be forwarded as sent (e.g. an invalid header for the upstream). */
  PENUMBRA_BAD_REQUEST: 400,
  /** A request line that is not HTTP/1.0 or HTTP/1.1 (HTTP/0.9, `HTTP/2.0`, …) on the HTTP/1 listener. */
  PENUMBRA_HTTP_VERSION_NOT_SUPPORTED: 505,
  /** More WebSocket/Upgrade connections open (or opening) than `proxy.maxUpgrades`. */
  PENUMBRA_TOO_MANY_UPGRADES: 503,
  /** A request body larger than `listen.maxBodyBytes` (Content-Length known): refused before any upstream. */
  PENUMBRA_BODY_TOO_LARGE: 413,
  /** A bug in penumbra itself. */
  PENUMBRA_INTERNAL: 500,
  /** Invalid configuration: the process exits with code 2 before listening. */
  PENUMBRA_INVALID_CONFIG: 2,
  /** An admin mutation without the right bearer token. */
  PENUMBRA_UNAUTHORIZED: 401,
  /** An admin request naming a shadow, mismatch or route that does not exist. */
  PENUMBRA_NOT_FOUND: 404,
  /** An admin request with an invalid body. */
  PENUMBRA_INVALID_REQUEST: 400,
  /**
   * `--workers` mode: an admin PATCH did not reach every worker (one failed or did not answer),
   * or no worker is running. The workers that applied it keep it; repeating it is safe.
   */
  PENUMBRA_WORKER_UNAVAILABLE: 503,
  /** `PUT /primary` with `requireReady`: the backend did not accept a connection; nothing was switched. */
  PENUMBRA_BACKEND_NOT_READY: 409,
  /** An admin operation that the current state does not allow (e.g. a rollback with no previous primary). */
  PENUMBRA_CONFLICT: 409,
  /** `POST /feedback`: the prediction log (Redis) cannot be reached; nothing was recorded, the call can be repeated. */
  PENUMBRA_STORE_UNAVAILABLE: 503,
  /** A chaos endpoint while `chaos.enabled` is false (the default). */
  PENUMBRA_CHAOS_DISABLED: 403
} as const

export type ErrorCode = keyof typeof ErrorCodes

const kPenumbraError = Symbol.for('penumbra.error')

/** The one base error class. `statusCode` is the HTTP status a client sees for this error. */
export class PenumbraError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  readonly [kPenumbraError] = true

  constructor (code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'PenumbraError'
    this.code = code
    this.statusCode = ErrorCodes[code]
  }

  /** Works across duplicate copies of this module (checked by brand, as undici does). */
  static override [Symbol.hasInstance] (instance: unknown): boolean {
    return typeof instance === 'object' && instance !== null && (instance as Record<symbol, unknown>)[kPenumbraError] === true
  }
}
