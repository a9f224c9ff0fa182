import type { IncomingHttpHeaders } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { CapturedResponse } from '../compare/types.js'

const EMPTY = Buffer.alloc(0)

/**
 * A bounded copy of one response as it streams by: the primary's (seen through the primary tap,
 * while it flows to the client) and each shadow's (read by the shadow call). Past `limit` bytes
 * the copy is dropped and marked truncated: a cut-off body is never compared (`unparseable`), so
 * keeping its head would only hold memory. Streamed (SSE) answers are reassembled from here.
 */
export class ResponseCapture {
  status = 0
  headers: IncomingHttpHeaders = {}
  truncated = false
  readonly #limit: number
  readonly #t0 = performance.now()
  #chunks: Buffer[] = []
  #bytes = 0
  /** Event streams only: [offset, ms] per chunk (see CapturedResponse.arrivals). */
  #arrivals: number[] | null = null

  constructor (limit: number) {
    this.#limit = limit
  }

  start (status: number, headers: IncomingHttpHeaders): void {
    this.status = status
    this.headers = headers
    const ct = headers['content-type']
    if (typeof ct === 'string' && ct.toLowerCase().startsWith('text/event-stream')) this.#arrivals = []
  }

  /** Copies a chunk; false when this chunk took the copy past its limit (the caller may stop reading). */
  add (chunk: Buffer): boolean {
    if (this.truncated) return true
    if (this.#bytes + chunk.length > this.#limit) {
      this.truncated = true
      this.#chunks = []
      this.#bytes = 0
      return false
    }
    if (this.#arrivals !== null) this.#arrivals.push(this.#bytes, performance.now() - this.#t0)
    this.#chunks.push(chunk)
    this.#bytes += chunk.length
    return true
  }

  /** The captured response; the capture lets go of its chunks. */
  finish (durationMs: number): CapturedResponse {
    const c = this.#chunks
    const body = c.length === 0 ? EMPTY : c.length === 1 ? c[0]! : Buffer.concat(c, this.#bytes)
    this.#chunks = []
    const out: CapturedResponse = { status: this.status, headers: this.headers, body, truncated: this.truncated, durationMs }
    if (this.#arrivals !== null && !this.truncated) out.arrivals = this.#arrivals
    return out
  }

  /** Drops the copy (the exchange failed). */
  discard (): void {
    this.#chunks = []
  }
}
