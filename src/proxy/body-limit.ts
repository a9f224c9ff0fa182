import { Transform, type TransformCallback } from 'node:stream'
import { PenumbraError } from '../errors.js'

/**
 * Passes a request body of unknown length (chunked) through unchanged until it has carried more
 * than `limit` bytes, then fails with PENUMBRA_BODY_TOO_LARGE: the upstream request is aborted
 * (undici sees its body fail) and the client gets a 413 on a connection that then closes, its
 * unread remainder being unframeable for this hop. A body with a Content-Length is refused
 * before any of it is read instead (see ProxyServer), so only chunked bodies pay for this stream.
 */
export class BodyLimit extends Transform {
  readonly limit: number
  #bytes = 0
  /** Called once, when the limit is crossed, before the stream fails. */
  onExceeded: ((err: PenumbraError) => void) | null = null

  constructor (limit: number) {
    super()
    this.limit = limit
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#bytes += chunk.length
    if (this.#bytes <= this.limit) { cb(null, chunk); return }
    const err = new PenumbraError('PENUMBRA_BODY_TOO_LARGE', `the request body exceeds listen.maxBodyBytes (${this.limit} bytes)`)
    this.onExceeded?.(err)
    cb(err)
  }
}
