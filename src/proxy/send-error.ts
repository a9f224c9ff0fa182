import type { ServerResponse } from 'node:http'
import type { PenumbraError } from '../errors.js'

/**
 * Answers with `{"error": CODE, "message": ..., "requestId": ...}` and the error's status, unless
 * the response has already started: then the connection is destroyed, so a truncated body is never
 * passed off as complete.
 */
export function sendError (res: ServerResponse, err: PenumbraError, requestId: string, requestIdHeader: string): void {
  if (res.headersSent || res.destroyed) {
    res.destroy(err)
    return
  }
  const body = JSON.stringify({ error: err.code, message: err.message, requestId })
  res.statusMessage = '' // never a phrase left over from a refused upstream head
  res.writeHead(err.statusCode, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    [requestIdHeader]: requestId
  })
  res.end(body)
}
