import { request as httpRequest, STATUS_CODES, type ClientRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { PenumbraError } from '../errors.js'
import type { Backend } from '../upstream/backend.js'
import { classifyUpstreamError, upstreamFailure, type UpstreamErrorReason } from '../upstream/upstream-error.js'
import { upgradeResponseHead, type RequestHeaderOptions } from './headers.js'
import { sendSocketError } from './send-error.js'

/** Bounded `outcome` label values of `penumbra_upgrades_total`. */
export type UpgradeOutcome = 'upgraded' | 'declined' | 'refused' | 'limit' | 'timeout' | 'error'

/** What the tunnels report, per upgrade, once its handshake is decided. */
export interface UpgradeSink {
  upgradeOutcome (outcome: UpgradeOutcome, backend: Backend | null, reason?: UpstreamErrorReason): void
  /** Handshakes in progress plus open tunnels, after each change. */
  upgradesOpen (count: number): void
}

/** What the upstream handshake needs, built by the proxy from its one header policy. */
export interface UpgradeRequest {
  req: IncomingMessage
  socket: Duplex
  /** Bytes the client sent after its request head (early frames of the new protocol). */
  head: Buffer
  backend: Backend
  /** The upstream header list (hop-by-hop removed, Via and request id added; without Connection/Upgrade). */
  headers: string[]
  requestId: string
  opts: RequestHeaderOptions
}

/** The RFC 9110 reason phrase when the upstream's cannot be relayed as is. */
const REASON = /^[\t\x20-\x7e]*$/

/**
 * WebSocket/Upgrade passthrough (RFC 9110 §7.8, RFC 6455 §4.1): one upstream connection per
 * tunnel (an upgraded connection cannot be shared or pooled), so their number is capped by
 * `proxy.maxUpgrades`, handshakes included; and the handshake gets the backend's `timeoutMs` as
 * its head deadline (504 when it passes), like a plain request's response head.
 */
export class UpgradeTunnels {
  max: number
  readonly #sink: UpgradeSink
  /** Client sockets of handshakes in progress and of open tunnels. */
  readonly #sockets = new Set<Duplex>()

  constructor (max: number, sink: UpgradeSink) {
    this.max = max
    this.#sink = sink
  }

  /** Handshakes in progress plus open tunnels. */
  get count (): number {
    return this.#sockets.size
  }

  /** True (and the client answered 503) when another upgrade would exceed `proxy.maxUpgrades`. */
  full (socket: Duplex, requestId: string, requestIdHeader: string): boolean {
    if (this.#sockets.size < this.max) return false
    sendSocketError(socket, new PenumbraError('PENUMBRA_TOO_MANY_UPGRADES', `${this.#sockets.size} WebSocket/Upgrade connections are open (proxy.maxUpgrades: ${this.max})`), requestId, requestIdHeader)
    this.#sink.upgradeOutcome('limit', null)
    return true
  }

  /** Sends the handshake upstream and, on 101, splices the two connections together. */
  open (u: UpgradeRequest): void {
    const { socket, backend } = u
    this.#sockets.add(socket)
    this.#sink.upgradesOpen(this.#sockets.size)
    socket.once('close', () => {
      this.#sockets.delete(socket)
      this.#sink.upgradesOpen(this.#sockets.size)
    })
    const target = new URL(backend.url)
    const headers = u.headers
    if (!u.opts.preserveHost) headers.push('host', target.host)
    headers.push('connection', 'upgrade', 'upgrade', String(u.req.headers.upgrade))
    let upstream: ClientRequest
    try {
      upstream = (target.protocol === 'https:' ? httpsRequest : httpRequest)({
        host: target.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: target.port === '' ? undefined : Number(target.port),
        method: 'GET',
        path: u.req.url,
        headers,
        agent: false // a tunnel owns its connection; the backend's pool is undici's, for requests
      })
    } catch (err) {
      // A header value Node will not send: not forwardable as is.
      sendSocketError(socket, new PenumbraError('PENUMBRA_BAD_REQUEST', `the request cannot be forwarded: ${(err as Error).message}`), u.requestId, u.opts.requestIdHeader)
      this.#sink.upgradeOutcome('error', backend, 'bad_request')
      return
    }
    let decided = false
    const fail = (reason: UpstreamErrorReason, err: Error): void => {
      if (decided) return
      decided = true
      clearTimeout(deadline)
      upstream.destroy()
      sendSocketError(socket, upstreamFailure(reason, backend.label, err), u.requestId, u.opts.requestIdHeader)
      this.#sink.upgradeOutcome(reason === 'timeout' ? 'timeout' : 'error', backend, reason)
    }
    const deadline = setTimeout(() => {
      fail('timeout', Object.assign(new Error(`no handshake answer within ${backend.cfg.timeoutMs} ms`), { code: 'UND_ERR_HEADERS_TIMEOUT' }))
    }, backend.cfg.timeoutMs).unref()
    const onClientClose = (): void => {
      if (decided) return
      decided = true
      clearTimeout(deadline)
      upstream.destroy()
      this.#sink.upgradeOutcome('error', backend, 'aborted')
    }
    socket.once('close', onClientClose)
    upstream.on('error', (err) => fail(classifyUpstreamError(err), err))
    upstream.on('upgrade', (res, upSocket, upHead) => {
      upSocket.on('error', () => {})
      if (decided) { upSocket.destroy(); return }
      decided = true
      clearTimeout(deadline)
      socket.off('close', onClientClose)
      if (!socket.writable) { upSocket.destroy(); return }
      socket.write(upgradeResponseHead(101, 'Switching Protocols', res.rawHeaders, u.requestId, u.opts), 'latin1')
      splice(socket, upSocket, upHead, u.head)
      this.#sink.upgradeOutcome('upgraded', backend)
    })
    upstream.on('response', (res) => {
      // The upstream declined the switch (e.g. 401, 404): relay its answer, then close.
      if (decided) { res.destroy(); return }
      decided = true
      clearTimeout(deadline)
      socket.off('close', onClientClose)
      const status = res.statusCode ?? 502
      const reason = res.statusMessage !== undefined && res.statusMessage !== '' && REASON.test(res.statusMessage) ? res.statusMessage : (STATUS_CODES[status] ?? '')
      res.on('error', () => socket.destroy())
      socket.once('close', () => res.destroy())
      if (!socket.writable) { res.destroy(); return }
      socket.write(upgradeResponseHead(status, reason, res.rawHeaders, u.requestId, u.opts), 'latin1')
      res.pipe(socket)
      this.#sink.upgradeOutcome('declined', backend)
    })
    upstream.end()
  }

  /** Closes every handshake and tunnel (the end of a shutdown drain). */
  destroyAll (): void {
    for (const s of this.#sockets) s.destroy()
  }
}

/** Joins the client and upstream connections; either side closing closes the other. */
function splice (client: Duplex, upstream: Socket, upHead: Buffer, clientHead: Buffer): void {
  upstream.setNoDelay(true)
  upstream.setTimeout(0)
  const c = client as Partial<Socket>
  c.setNoDelay?.(true)
  c.setTimeout?.(0)
  const close = (): void => { client.destroy(); upstream.destroy() }
  client.once('close', close)
  upstream.once('close', close)
  if (upHead.length > 0) client.write(upHead)
  if (clientHead.length > 0) upstream.write(clientHead)
  upstream.pipe(client)
  client.pipe(upstream)
}
