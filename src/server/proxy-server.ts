import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Duplex, Readable } from 'node:stream'
import { performance } from 'node:perf_hooks'
import type { Dispatcher } from 'undici'
import type { Config } from '../config/schema.js'
import type { Metrics } from '../metrics/metrics.js'
import { methodLabel } from '../metrics/metrics.js'
import type { Logger } from '../log/logger.js'
import { ForwardHandler, type ExchangeSink } from '../proxy/forward-handler.js'
import { hasRequestBody, requestIdFor, upstreamRequestHeaders, type RequestHeaderOptions } from '../proxy/headers.js'
import { UpgradeTunnels, type UpgradeOutcome, type UpgradeSink } from '../proxy/upgrade-tunnel.js'
import type { UpstreamErrorReason } from '../upstream/upstream-error.js'
import type { Backend } from '../upstream/backend.js'
import type { RuntimeState } from '../runtime/runtime-state.js'
import type { ExposureLog } from '../experiments/exposure-log.js'
import type { Feedback } from '../feedback/feedback.js'
import { Router } from '../routing/router.js'
import { sendError, sendSocketError } from '../proxy/send-error.js'
import { PenumbraError } from '../errors.js'
import { requestRefusal, upgradeRefusal } from '../proxy/request-policy.js'
import { BodyLimit } from '../proxy/body-limit.js'
import { ClientConnection, refusalBytes } from './client-connection.js'
import type { ShadowSet } from '../shadow/shadow-set.js'

/**
 * How often node:http looks for connections past headersTimeoutMs/requestTimeoutMs. Node's default
 * (30 s) let a slow-header client live up to headersTimeout + 30 s; at 1 s it is closed (408)
 * within about a second of its deadline, for a scan of the connection list once a second.
 */
const CONNECTIONS_CHECK_MS = 1000

/** Request bodies up to this size (Content-Length known) are read whole before dispatch. */
const BUFFER_BODY_LIMIT = 64 * 1024

const CLIENT_ERROR_RESPONSES: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  // A version llhttp cannot parse at all (HTTP/3.1, HTTP/1.2): answered as requestRefusal answers the ones it can.
  HPE_INVALID_VERSION: '505 HTTP Version Not Supported',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
  ERR_HTTP_HEADERS_TIMEOUT: '408 Request Timeout'
}

/** Header options for backends without and with `preserveHost` (index 0 and 1): no object per request. */
type HeaderOpts = [RequestHeaderOptions & { loopDetection: boolean }, RequestHeaderOptions & { loopDetection: boolean }]

/**
 * The inbound server: each request reads the runtime snapshot once, the router picks the backend
 * that answers it (the active primary), and the backend's undici dispatcher carries it; a
 * sampled share is also planned for the shadows. Nothing on this path waits for a shadow.
 */
export class ProxyServer implements ExchangeSink, UpgradeSink {
  readonly server: Server
  readonly #runtime: RuntimeState
  readonly #router = new Router()
  #headerOpts: HeaderOpts
  #accessLog: boolean
  /** drift.experimentSampleRate (0: experiment arms are not observed). */
  #armSampleRate: number
  /** listen.maxBodyBytes (listen keys need a restart, so not reloaded). */
  readonly #maxBodyBytes: number | null
  readonly #metrics: Metrics
  readonly #log: Logger
  readonly #shadows: ShadowSet
  readonly #tunnels: UpgradeTunnels
  #draining = false
  #inflight = 0
  #idle: Array<() => void> = []

  readonly #exposures: ExposureLog | null
  /** The prediction log, for experiment arms' answers nothing mirrors (issue #19). */
  readonly #feedback: Feedback | null

  constructor (config: Config, metrics: Metrics, log: Logger, shadows: ShadowSet, runtime: RuntimeState, exposures: ExposureLog | null = null, feedback: Feedback | null = null) {
    this.#exposures = exposures
    this.#feedback = feedback
    this.#metrics = metrics
    this.#log = log
    this.#shadows = shadows
    this.#runtime = runtime
    this.#headerOpts = headerOptions(config)
    this.#accessLog = config.log.access
    this.#maxBodyBytes = config.listen.maxBodyBytes
    this.#armSampleRate = armSampleRate(config)
    // WebSocket/Upgrade passthrough (the HTTP path is undici's): server.close() waits for its
    // sockets and closeAllConnections() does not see them, so the tunnels track their own.
    this.#tunnels = new UpgradeTunnels(config.proxy.maxUpgrades, this)

    const l = config.listen
    this.server = createServer({
      keepAliveTimeout: l.keepAliveTimeoutMs,
      headersTimeout: l.headersTimeoutMs,
      requestTimeout: l.requestTimeoutMs,
      maxHeaderSize: l.maxHeaderBytes,
      connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
      // Never loosen the parser: llhttp's strictness is what rejects CL+TE smuggling (RFC 9112 §6.3).
      insecureHTTPParser: false
    }, this.#onRequest)
    this.server.on('connection', this.#onConnection)
    // Above it net.Server closes a new connection at once, before any byte is read.
    this.server.maxConnections = l.maxConnections
    this.server.on('drop', () => this.#metrics.connectionsDropped.inc())
    this.server.on('upgrade', this.#onUpgrade)
    this.server.on('clientError', this.#onClientError)
  }

  /** Applies the reloadable parts of a new config (SIGHUP): headers, access log. Backends are the BackendSet's. */
  reload (config: Config): void {
    this.#headerOpts = headerOptions(config)
    this.#armSampleRate = armSampleRate(config)
    this.#accessLog = config.log.access
    this.#tunnels.max = config.proxy.maxUpgrades
  }

  get inflight (): number {
    return this.#inflight
  }

  #onConnection = (socket: Duplex): void => {
    ClientConnection.attach(socket)
    const m = this.#metrics.connectionsOpen
    m.inc()
    socket.once('close', () => m.dec())
  }

  #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const start = performance.now()
    const opts = this.#headerOpts[0]
    const requestId = requestIdFor(req.headers[opts.requestIdHeader])
    this.#inflight++
    this.#metrics.inflight.inc()
    const h = new ForwardHandler(req, res, requestId, start, opts, this)
    const conn = ClientConnection.of(req.socket)
    if (conn !== undefined) { conn.pending.add(h); h.connection = conn }
    if (this.#draining) res.shouldKeepAlive = false
    const refused = requestRefusal(req, opts)
    if (refused !== null) {
      // After a version it cannot speak, the connection's framing is unknown: close it.
      if (refused.statusCode === 505) res.shouldKeepAlive = false
      sendError(res, refused, requestId, opts.requestIdHeader)
      h.status = refused.statusCode
      return
    }
    if (this.#maxBodyBytes !== null && Number(req.headers['content-length']) > this.#maxBodyBytes) {
      this.#refuseLargeBody(h)
      return
    }
    // The one read of the runtime state for this request: a switch after this line does not move it.
    const snapshot = this.#runtime.snapshot
    const route = this.#router.pick(req, snapshot)
    const backend = route.backend
    h.backend = backend
    h.route = route
    backend.inflight++
    h.headers = upstreamRequestHeaders(req, requestId, backend.cfg.preserveHost ? this.#headerOpts[1] : opts)
    // The arm an experiment assigned: the backend is told too (it may log or branch on it).
    if (route.header !== null) h.headers.push('x-penumbra-experiment', route.header)
    // Outcomes may later name this request id instead of the unit.
    if (route.exposure !== null && this.#exposures !== null) this.#exposures.record(requestId, route.exposure)
    const hasBody = hasRequestBody(req)
    const small = hasBody && req.headers['transfer-encoding'] === undefined && Number(req.headers['content-length']) <= BUFFER_BODY_LIMIT
    const method = req.method ?? 'GET'
    let body: NodeJS.ReadableStream | null = hasBody && !small ? req : null
    // An experiment arm's answer, sampled for drift and assertions (drift.experimentSampleRate).
    const observeArm = route.exposure !== null && this.#armSampleRate > 0 && Math.random() < this.#armSampleRate
    if ((snapshot.shadows.length > 0 || snapshot.canary !== null || observeArm) && method !== 'HEAD') {
      const planned = this.#shadows.plan(req, snapshot, requestId, h.headers, hasBody, small, backend, observeArm)
      if (planned !== null) {
        h.tap = planned.job
        if (planned.body !== null) body = planned.body
      }
    }
    if (h.tap === null && route.exposure !== null && this.#feedback !== null && method !== 'HEAD') h.tap = this.#feedback.armTap(requestId, method, req.url ?? '/', backend.name)
    if (small) {
      h.bufferBody()
      return
    }
    if (body !== null && this.#maxBodyBytes !== null && req.headers['transfer-encoding'] !== undefined) body = this.#limitBody(h, body, this.#maxBodyBytes)
    this.#dispatch(h, body)
    // Without a body the shadows go out now, right after the primary (never before it).
    if (!hasBody && h.tap !== null) h.tap.onRequestBody(null)
  }

  /**
   * RFC 9110 §15.5.14: 413 before any upstream is contacted, and the connection closes rather
   * than read (and discard) the body to keep it alive.
   */
  #refuseLargeBody (h: ForwardHandler): void {
    this.#metrics.bodyTooLarge.inc({ framing: 'content-length' })
    h.res.shouldKeepAlive = false
    const err = new PenumbraError('PENUMBRA_BODY_TOO_LARGE', `the request body (Content-Length: ${String(h.req.headers['content-length'])}) exceeds listen.maxBodyBytes (${String(this.#maxBodyBytes)} bytes)`)
    sendError(h.res, err, h.requestId, this.#headerOpts[0].requestIdHeader)
    h.status = 413
  }

  /** A chunked body counted on its way upstream: past the limit, 413 and a closed connection. */
  #limitBody (h: ForwardHandler, body: NodeJS.ReadableStream, max: number): NodeJS.ReadableStream {
    const limiter = new BodyLimit(max)
    limiter.onExceeded = () => {
      this.#metrics.bodyTooLarge.inc({ framing: 'chunked' })
      h.res.shouldKeepAlive = false
      // The shadows' copy (a tee in front of the limiter) ends too: no shadow gets a partial body.
      if (body !== h.req) (body as Readable).destroy()
    }
    // undici reads the failure from the body it holds; this listener only keeps a late one from being uncaught.
    limiter.on('error', () => {})
    body.pipe(limiter)
    return limiter
  }

  bodyBuffered (h: ForwardHandler, body: Buffer): void {
    this.#dispatch(h, body)
    if (h.tap !== null) h.tap.onRequestBody(body)
  }

  #dispatch (h: ForwardHandler, body: NodeJS.ReadableStream | Buffer | null): void {
    const req = h.req
    // Without a body or with a buffered one, the handler keeps primary.timeoutMs itself (see
    // ForwardHandler.deadlineMs); a streamed body keeps undici's timers, which follow the upload.
    const streamed = body !== null && !Buffer.isBuffer(body)
    const backend = h.backend!
    const timeoutMs = backend.cfg.timeoutMs
    if (!streamed) h.deadlineMs = timeoutMs
    try {
      backend.dispatcher.dispatch({
        method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
        path: req.url ?? '/',
        headers: h.headers,
        body: body as Dispatcher.DispatchOptions['body'],
        headersTimeout: streamed ? timeoutMs : 0,
        bodyTimeout: streamed ? timeoutMs : 0,
        // RFC 9112 §9.3.1: a proxy MUST NOT retry non-idempotent requests on its own.
        idempotent: false
      }, h)
    } catch (err) {
      // undici reports invalid requests through onResponseError; this is for anything else.
      h.onResponseError(null, err as Error)
    }
  }

  exchangeDone (h: ForwardHandler): void {
    h.connection?.done(h)
    this.#inflight--
    const m = this.#metrics
    m.inflight.dec()
    const seconds = (performance.now() - h.start) / 1000
    // 499 (nginx's "client closed request") for every client abort before the response was
    // complete, also after the head went out: counting those as 200 hides clients that give up.
    const status = h.status === 0 || (h.errorReason === 'aborted' && !h.res.writableFinished) ? 499 : h.status
    m.requests.inc({ method: methodLabel(h.req.method ?? 'GET'), code: String(status) })
    m.requestDuration.observe(seconds)
    const backend = h.backend
    if (backend !== null) {
      backend.inflight--
      m.backendRequests.inc({ backend: backend.name, code: String(status) })
      // The canary arm that routed it (issue #18): its gates read these counters.
      h.route?.canary?.record(status, h.upstreamMs, h.errorReason)
      const v = h.route?.variant
      if (v != null) {
        v.metrics.requests(status).inc()
        // A client that left first says nothing of the arm's speed or errors.
        if (status !== 499) {
          v.metrics.duration.observe(seconds)
          v.tally.record(status, seconds)
        }
      }
      if (h.upstreamMs >= 0 && h.errorReason === null) m.upstreamDuration.observe({ upstream: backend.name }, h.upstreamMs / 1000)
      // A client that went away or sent something unforwardable is not the upstream's failure.
      if (h.errorReason !== null && h.errorReason !== 'aborted' && h.errorReason !== 'bad_request') m.upstreamErrors.inc({ upstream: backend.name, reason: h.errorReason })
    }
    if (this.#accessLog) {
      this.#log.info({
        method: h.req.method,
        path: pathOnly(h.req.url), // the query may carry secrets (api_key=...): never logged
        status,
        durationMs: Math.round(seconds * 1e6) / 1e3,
        requestId: h.requestId,
        upstream: backend?.name ?? null,
        ...(h.errorReason !== null ? { error: h.errorReason } : undefined)
      }, 'access')
    }
    if (this.#inflight === 0 && this.#idle.length > 0) {
      const waiters = this.#idle
      this.#idle = []
      for (const w of waiters) w()
    }
  }

  #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => {}) // a reset client socket must not crash the process
    if (this.#draining) { socket.destroy(); return }
    const opts = this.#headerOpts[0]
    const requestId = requestIdFor(req.headers[opts.requestIdHeader])
    // The same refusals as a plain request (version, target form, loop), then the upgrade's own.
    const refused = requestRefusal(req, opts) ?? upgradeRefusal(req)
    if (refused !== null) {
      sendSocketError(socket, refused, requestId, opts.requestIdHeader)
      this.upgradeOutcome('refused', null)
      return
    }
    if (this.#tunnels.full(socket, requestId, opts.requestIdHeader)) return
    // WebSocket connections go to the active primary (experiments assign request exchanges).
    const backend = this.#runtime.snapshot.primary
    const headerOpts = backend.cfg.preserveHost ? this.#headerOpts[1] : opts
    this.#tunnels.open({ req, socket, head, backend, headers: upstreamRequestHeaders(req, requestId, headerOpts), requestId, opts: headerOpts })
  }

  upgradesOpen (count: number): void {
    this.#metrics.upgradesOpen.set(count)
  }

  upgradeOutcome (outcome: UpgradeOutcome, backend: Backend | null, reason?: UpstreamErrorReason): void {
    this.#metrics.upgrades.inc({ outcome })
    if (backend !== null && reason !== undefined && reason !== 'aborted' && reason !== 'bad_request') {
      this.#metrics.upstreamErrors.inc({ upstream: backend.name, reason })
    }
  }

  #onClientError = (err: Error & { code?: string }, socket: Duplex): void => {
    // Malformed requests (including CL+TE conflicts rejected by llhttp) get a status and a
    // closed connection; they never reach the primary and never crash the process.
    if (err.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return }
    const line = CLIENT_ERROR_RESPONSES[err.code ?? ''] ?? '400 Bad Request'
    const conn = ClientConnection.of(socket)
    if (conn !== undefined && conn.refusal !== null) return // the parser reports each later packet again
    if (conn !== undefined && conn.canDefer()) {
      // Pipelined requests read before the malformed one were dispatched: their responses go
      // out first, in order (RFC 9112 §9.3.2), then this refusal, then the connection closes.
      conn.refusal = line
      this.#metrics.requests.inc({ method: 'OTHER', code: line.slice(0, 3) })
      return
    }
    // Not deferrable (a pending request's own body failed) while its response is streaming: a
    // status line now would be spliced into that response's body. Close the connection instead.
    const current = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage
    if (current != null && current.headersSent === true) { socket.destroy(); return }
    this.#metrics.requests.inc({ method: 'OTHER', code: line.slice(0, 3) })
    socket.end(refusalBytes(line))
  }

  listen (host: string, port: number): Promise<void> {
    return listenOn(this.server, host, port, 'listen')
  }

  /**
   * Stops accepting, lets in-flight requests finish until `deadline` (ms since epoch), then
   * closes what is left. The backends' pools are closed by their owner (BackendSet), after the shadows.
   */
  async close (deadline: number): Promise<void> {
    this.#draining = true
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    this.server.closeIdleConnections()
    if (this.#inflight > 0) {
      const wait = deadline - Date.now()
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(0, wait))
        this.#idle.push(() => { clearTimeout(t); resolve() })
      })
    }
    this.server.closeAllConnections()
    this.#tunnels.destroyAll()
    await closed
  }
}

function pathOnly (url: string | undefined): string {
  if (url === undefined) return '/'
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/** The share of experiment-arm answers captured for drift and assertions (0 without drift). */
function armSampleRate (config: Config): number {
  return config.drift !== undefined && config.drift.enabled && config.experiments.length > 0 ? config.drift.experimentSampleRate : 0
}

function headerOptions (config: Config): HeaderOpts {
  const base = {
    loopDetection: config.proxy.loopDetection,
    via: config.proxy.via,
    xForwarded: config.proxy.xForwarded,
    requestIdHeader: config.proxy.requestIdHeader
  }
  return [{ ...base, preserveHost: false }, { ...base, preserveHost: true }]
}

/** Listens, turning EADDRINUSE into an error that names the port and its config key. */
export function listenOn (server: Server, host: string, port: number, key: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      if (err.code === 'EADDRINUSE') reject(new Error(`${key}.port: ${host}:${port} is already in use (EADDRINUSE)`))
      else if (err.code === 'EACCES') reject(new Error(`${key}.port: no permission to listen on ${host}:${port} (EACCES)`))
      else if (err.code === 'EADDRNOTAVAIL') reject(new Error(`${key}.host: ${host} is not an address of this machine (EADDRNOTAVAIL)`))
      else reject(err)
    }
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      resolve()
    })
  })
}
