import { Transform, type TransformCallback } from 'node:stream'

/** Told once how the copy ended. */
export interface BodyTeeOwner {
  bodyReady (body: Buffer): void
  bodyFailed (tooLarge: boolean): void
}

/**
 * Passes the client's request body through to the primary unchanged while keeping a copy of it,
 * up to `limit` bytes. Past the limit the copy is dropped (the shadows are skipped), never the
 * primary's bytes. The copy is never read by a shadow while it flows, so a shadow cannot put
 * backpressure on the client upload.
 */
export class BodyTee extends Transform {
  readonly limit: number
  readonly #owner: BodyTeeOwner
  #chunks: Buffer[] | null = []
  #bytes = 0

  constructor (limit: number, owner: BodyTeeOwner) {
    super()
    this.limit = limit
    this.#owner = owner
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.#chunks !== null) {
      this.#bytes += chunk.length
      if (this.#bytes > this.limit) this.#chunks = null
      else this.#chunks.push(chunk)
    }
    cb(null, chunk)
  }

  override _flush (cb: TransformCallback): void {
    const chunks = this.#chunks
    this.#chunks = null
    try {
      if (chunks === null) this.#owner.bodyFailed(true)
      else this.#owner.bodyReady(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#bytes))
    } catch {
      // The primary's body stream must end cleanly whatever the shadows' side does.
    }
    cb()
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    // Destroyed before the end (client abort, primary failure): no shadow gets a partial body.
    this.#owner.bodyFailed(false)
    this.#chunks = null
    cb(err)
  }

  /** Bytes seen so far (including those past the limit). */
  get bytes (): number {
    return this.#bytes
  }
}
