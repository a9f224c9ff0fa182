import { STATUS_CODES, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
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

/**
 * `sendError` for a raw client socket (a WebSocket/Upgrade request, which Node hands over without
 * a ServerResponse): the same JSON body, then the connection closes (RFC 9112 §9.6).
 */
export function sendSocketError (socket: Duplex, err: PenumbraError, requestId: string, requestIdHeader: string): void {
  if (!socket.writable) { socket.destroy(); return }
  const body = JSON.stringify({ error: err.code, message: err.message, requestId })
  socket.end(`HTTP/1.1 ${err.statusCode} ${STATUS_CODES[err.statusCode] ?? ''}\r\n` +
    'content-type: application/json; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    'cache-control: no-store\r\n' +
    `${requestIdHeader}: ${requestId}\r\n` +
    'connection: close\r\n\r\n' + body)
}
