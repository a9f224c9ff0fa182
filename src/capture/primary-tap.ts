import type { IncomingHttpHeaders } from 'node:http'
import type { UpstreamErrorReason } from '../upstream/upstream-error.js'

/**
 * Sees the primary response as it streams by, for requests that were mirrored (the shadow
 * module's join record implements it). Every call is synchronous and must not throw.
 */
export interface PrimaryTap {
  onPrimaryStart (status: number, headers: IncomingHttpHeaders): void
  onPrimaryData (chunk: Buffer): void
  onPrimaryEnd (durationMs: number): void
  onPrimaryError (reason: UpstreamErrorReason): void
  /** A buffered request body is complete (see `bufferBody`). */
  onRequestBody (body: Buffer | null): void
  /** The request body never arrived completely (the client went away first). */
  onRequestAborted (): void
}
