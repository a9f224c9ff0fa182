import { PenumbraError } from '../errors.js'

/** Bounded `reason` label values of `penumbra_upstream_errors_total`. */
/** Every reason of `penumbra_upstream_errors_total` (series are created at 0 for each). */
export const UPSTREAM_ERROR_REASONS = ['refused', 'reset', 'timeout', 'dns', 'bad_response', 'aborted', 'bad_request', 'other'] as const
export type UpstreamErrorReason = typeof UPSTREAM_ERROR_REASONS[number]

/**
 * Classifies an undici/socket error by its stable `code` (never `instanceof`, which is unreliable
 * across copies of undici). Timeouts give 504, everything else from the upstream 502
 * (RFC 9110 §15.6.3, §15.6.5); a 500 would claim the proxy itself failed.
 */
export function classifyUpstreamError (err: Error & { code?: string }): UpstreamErrorReason {
  const code = err.code ?? ''
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return 'timeout'
    case 'ECONNREFUSED':
      return 'refused'
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return 'reset'
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
      return 'dns'
    case 'UND_ERR_ABORTED':
    case 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH':
      return 'aborted'
    case 'PENUMBRA_BODY_TOO_LARGE': // the body limit failed the upload: the client's doing
    case 'UND_ERR_INVALID_ARG':
    case 'UND_ERR_NOT_SUPPORTED':
      // undici refused to send the request as given (e.g. a header value it cannot frame).
      return 'bad_request'
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_INFO':
      return 'bad_response'
  }
  // undici's HTTPParserError carries the llhttp error in its message, not always in `code`.
  if (code.startsWith('HPE_') || err.name === 'HTTPParserError') return 'bad_response'
  if (err.name === 'AbortError') return 'aborted'
  return 'other'
}

/** The client-facing error for an upstream failure before any response byte was sent. */
export function upstreamFailure (reason: UpstreamErrorReason, upstream: string, err: Error): PenumbraError {
  switch (reason) {
    case 'timeout':
      return new PenumbraError('PENUMBRA_UPSTREAM_TIMEOUT', `${upstream} did not answer in time`, { cause: err })
    case 'bad_response':
      return new PenumbraError('PENUMBRA_UPSTREAM_BAD_RESPONSE', `${upstream} sent an invalid HTTP response`, { cause: err })
    case 'aborted':
      return new PenumbraError('PENUMBRA_BAD_REQUEST', 'the request body ended early', { cause: err })
    case 'bad_request':
      return new PenumbraError('PENUMBRA_BAD_REQUEST', `the request cannot be forwarded: ${err.message}`, { cause: err })
    default:
      return new PenumbraError('PENUMBRA_UPSTREAM_UNAVAILABLE', `${upstream} is unavailable (${reason})`, { cause: err })
  }
}
