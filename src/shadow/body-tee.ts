import { Transform, type TransformCallback } from 'node:stream'

/**
 * Passes the client's request body through to the primary unchanged while keeping a copy of it,
 * up to `limit` bytes. Past the limit the copy is dropped (the shadows are skipped), never the
 * primary's bytes. The copy is never read by a shadow while it flows, so a shadow cannot put
 * backpressure on the client upload.
 */
export class BodyTee extends Transform {
  readonly limit: number
  #chunks: Buffer[] | null = []
  #bytes = 0

  constructor (limit: number) {
    super()
    this.limit = limit
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.#chunks !== null) {
      this.#bytes += chunk.length
      if (this.#bytes > this.limit) this.#chunks = null
      else this.#chunks.push(chunk)
    }
    cb(null, chunk)
  }

  /** The whole body once the stream has ended; null when it grew past the limit. */
  copy (): Buffer | null {
    if (this.#chunks === null) return null
    return this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#bytes)
  }

  /** Bytes seen so far (including those past the limit). */
  get bytes (): number {
    return this.#bytes
  }
}
