import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'

/** What a client connection needs to know of an exchange on it. */
export interface PendingExchange {
  /** The request head and body have been read whole (the parser is past it). */
  readonly requestComplete: boolean
  /** The connection closed before this exchange finished: abort it upstream and count it. */
  abandon (): void
}

const kConnection = Symbol('penumbra.connection')

/**
 * One client connection: the exchanges whose responses are not finished yet, in the order the
 * client sent them, and a refusal (a status line for a malformed request) waiting for them.
 *
 * Why it exists: with pipelining (RFC 9112 §9.3.2) the parser can read and dispatch several
 * requests before it meets a malformed one. Answering that one at once and closing would drop
 * the responses of requests the upstream already executed; and Node never emits 'close' on a
 * ServerResponse still queued behind another when the socket closes, so its exchange would stay
 * "in flight" for good (the in-flight gauge, and the drain on shutdown, would wait for it).
 */
export class ClientConnection {
  readonly pending = new Set<PendingExchange>()
  /** The status line to send once `pending` is empty (then the connection closes). */
  refusal: string | null = null
  readonly socket: Duplex

  constructor (socket: Duplex) {
    this.socket = socket
    ;(socket as Duplex & { [kConnection]?: ClientConnection })[kConnection] = this
    socket.once('close', this.#onClose)
  }

  /** A 'connection' listener: every client socket gets its state. */
  static attach (this: void, socket: Duplex): void {
    new ClientConnection(socket) // eslint-disable-line no-new
  }

  static of (socket: Duplex | Socket): ClientConnection | undefined {
    return (socket as Duplex & { [kConnection]?: ClientConnection })[kConnection]
  }

  /**
   * True when a refusal can wait for the pending responses: every pending request was read
   * whole, so the bad bytes are a later request's. When a pending request's own body is what
   * failed to parse, that request can never complete: the connection is closed instead.
   */
  canDefer (): boolean {
    if (this.pending.size === 0) return false
    for (const ex of this.pending) if (!ex.requestComplete) return false
    return true
  }

  /** An exchange finished: when it was the last one a refusal waited for, send it and close. */
  done (ex: PendingExchange): void {
    this.pending.delete(ex)
    if (this.refusal === null || this.pending.size > 0) return
    const s = this.socket
    if (s.writable) s.end(refusalBytes(this.refusal))
    else s.destroy()
  }

  #onClose = (): void => {
    if (this.pending.size === 0) return
    const left = [...this.pending]
    this.pending.clear()
    for (const ex of left) ex.abandon()
  }
}

/** A bodiless response that closes the connection (the framing of what follows is lost). */
export function refusalBytes (line: string): string {
  return `HTTP/1.1 ${line}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`
}
