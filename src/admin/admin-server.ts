import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { timingSafeEqual, createHash } from 'node:crypto'
import { z } from 'zod'
import { PenumbraError } from '../errors.js'
import type { Logger } from '../log/logger.js'
import { MAX_EVENTS, parseEvents } from '../experiments/outcomes.js'
import type { ExperimentAnalysis } from '../experiments/analysis.js'
import { AnalysisHistory, MIN_SPACING_MS } from './analysis-history.js'
import { MAX_FEEDBACK, parseFeedbackBody } from '../feedback/feedback-input.js'
import { chaosExperimentSchema, type ChaosExperimentSpec } from '../config/chaos-schema.js'

/** What the admin listener reads and changes; implemented in-process or, with --workers, over IPC. */
export interface AdminBackend {
  metrics (): Promise<{ contentType: string, body: string }>
  ready (): Promise<{ ready: boolean, reason?: string }>
  config (): unknown
  shadows (): Promise<unknown>
  patchShadow (name: string, patch: { sampleRate?: number, enabled?: boolean }): Promise<unknown>
  experiments (): Promise<unknown>
  /** `POST /events`: `{accepted, rejected: [{index, reason, message}]}`. */
  postEvents (events: unknown[]): Promise<unknown>
  patchExperiment (name: string, patch: { traffic?: number, enabled?: boolean }): Promise<unknown>
  mismatches (q: { shadow?: string, limit?: number }): Promise<unknown>
  mismatch (id: string): Promise<unknown>
  report (): Promise<unknown>
  noise (): Promise<unknown>
  /** `POST /feedback`: `{counts, results: [{index, result, message?}]}`. */
  postFeedback (items: unknown[]): Promise<unknown>
  /** `GET /quality`: online quality per model, paired comparisons, coverage. */
  quality (): Promise<unknown>
  /** The status page (HTML), when one is shipped. */
  statusPage? (): string
  backends (): Promise<unknown>
  primary (): Promise<unknown>
  /** Blue/green switch; `who` is the caller's address, for the log. */
  switchPrimary (req: { backend: string, requireReady?: boolean }, who: string): Promise<unknown>
  rollbackPrimary (who: string): Promise<unknown>
  /** Chaos (issue #20): is `chaos.enabled`? The chaos endpoints answer 403 otherwise. */
  chaosEnabled? (): boolean
  chaosList? (): Promise<unknown>
  chaosStart? (spec: ChaosExperimentSpec, who: string): Promise<unknown>
  chaosStop? (name: string, who: string): Promise<unknown>
  chaosStopAll? (who: string): Promise<unknown>
  /** `GET /drift` (docs/drift.md); absent: 404. */
  drift? (): Promise<unknown>
  /** `GET /assertions`: assertion counts and the newest violations. */
  assertions? (q: { model?: string, assertion?: string, limit?: number }): Promise<unknown>
  /** `POST /drift/reference`: pins the current window as the reference (one model or all). */
  pinDriftReference? (model?: string): Promise<unknown>
  /** `GET /canary` (issue #18). */
  canary? (): Promise<unknown>
  /** `POST /canary/start|pause|resume|abort|promote|retry`. */
  canaryCommand? (cmd: 'start' | 'pause' | 'resume' | 'abort' | 'promote' | 'retry', who: string): Promise<unknown>
  /** `PUT /canary/weight`: an external controller's decision (canary.controller: external). */
  canaryWeight? (req: { weight: number, phase?: CanaryPhaseName, step?: number, reason?: string, summary?: string, gates?: unknown[] }, who: string): Promise<unknown>
}

type CanaryPhaseName = 'idle' | 'shadow' | 'step' | 'paused' | 'rolled_back' | 'promoted' | 'completed'
const CANARY_COMMANDS = new Set(['start', 'pause', 'resume', 'abort', 'promote', 'retry'])

const canaryWeightBody = z.strictObject({
  weight: z.number('must be a number within 0..1').min(0, 'must be a number within 0..1').max(1, 'must be a number within 0..1'),
  phase: z.enum(['idle', 'shadow', 'step', 'paused', 'rolled_back', 'promoted', 'completed']).optional(),
  step: z.number().int().min(0, 'must be a whole number >= 0').optional(),
  reason: z.string().max(4096).optional(),
  summary: z.string().max(4096).optional(),
  gates: z.array(z.unknown()).max(32).optional()
})

const primarySwitchBody = z.strictObject({
  backend: z.string().min(1, 'must be a backend name'),
  requireReady: z.boolean().optional()
})

const MAX_ADMIN_BODY = 64 * 1024
/** 10,000 events of a few hundred bytes each. */
const MAX_EVENTS_BODY = 16 * 1024 * 1024

/** The `admin` keys that decide who may call what. */
export interface AdminAuth {
  token: string | null
  /** Default: true when a token is set. */
  protectReads?: boolean
  protectMetrics: boolean
  /** Spacing of the experiments' history points (default 10 s). */
  historyIntervalMs?: number
}

/** Always open: orchestrators probe these without credentials. */
const PROBES = new Set(['/healthz', '/readyz'])

/**
 * The admin listener, on its own port (default 127.0.0.1:9901). With `admin.token` set,
 * mutations need `Authorization: Bearer <token>`, and so do reads (`admin.protectReads`, on by
 * default with a token) except the probes, `/metrics` (unless `admin.protectMetrics`) and the
 * status page's HTML shell, which holds no data (its scripts send the token for every read).
 */
export class AdminServer {
  readonly server: Server
  readonly #backend: AdminBackend
  readonly #log: Logger
  #token: Buffer | null = null
  #protectReads = false
  #protectMetrics = false
  #stopping = false
  /** The experiments' estimates over time (the status page's cumulative-effect chart). */
  readonly #history: AnalysisHistory
  readonly #sampler: NodeJS.Timeout

  constructor (backend: AdminBackend, log: Logger, auth: AdminAuth) {
    this.#backend = backend
    this.#log = log
    this.setAuth(auth)
    // The chart has points even while nobody reads: one look per interval (a reload keeps it).
    this.#history = new AnalysisHistory(auth.historyIntervalMs ?? MIN_SPACING_MS)
    this.#sampler = setInterval(() => { this.#experiments().catch(() => {}) }, this.#history.spacingMs).unref()
    this.server = createServer({ requestTimeout: 30_000 }, (req, res) => {
      this.#route(req, res).catch((err: unknown) => this.#fail(res, err))
    })
  }

  /** Applies the token and protection switches (at start and on reload). */
  setAuth (auth: AdminAuth): void {
    this.#token = auth.token === null ? null : digest(auth.token)
    this.#protectReads = auth.token !== null && (auth.protectReads ?? true)
    this.#protectMetrics = auth.token !== null && auth.protectMetrics
  }

  /** From now on /readyz answers 503 (shutdown has begun). */
  stopping (): void {
    this.#stopping = true
  }

  async #route (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin')
    const path = url.pathname
    const method = req.method ?? 'GET'
    const b = this.#backend

    if (path === '/chaos' || path.startsWith('/chaos/')) return this.#chaos(req, res, method, path)

    if (method === 'GET' || method === 'HEAD') {
      if (this.#readNeedsToken(path)) this.#authorize(req)
      switch (path) {
        case '/metrics': {
          const m = await b.metrics()
          return send(res, 200, m.body, m.contentType)
        }
        case '/healthz':
          return json(res, 200, { status: 'ok' })
        case '/readyz': {
          if (this.#stopping) return json(res, 503, { ready: false, reason: 'shutting down' })
          const r = await b.ready()
          return json(res, r.ready ? 200 : 503, r)
        }
        case '/config':
          return json(res, 200, b.config())
        case '/shadows':
          return json(res, 200, await b.shadows())
        case '/mismatches': {
          const limit = url.searchParams.get('limit')
          const n = limit === null ? undefined : Number(limit)
          if (n !== undefined && (!Number.isInteger(n) || n < 1)) throw new PenumbraError('PENUMBRA_INVALID_REQUEST', 'limit: must be a positive integer')
          return json(res, 200, await b.mismatches({ shadow: url.searchParams.get('shadow') ?? undefined, limit: n }))
        }
        case '/report':
          return json(res, 200, await b.report())
        case '/report/llm': {
          // The report's LLM sections (issue #16; the status page's LLM view): 404 while no
          // shadow saw an LLM answer.
          const r = await b.report() as { generatedAt?: string, shadows?: Array<{ shadow: string, llm: Record<string, unknown> | null }> }
          const shadows = (r.shadows ?? []).filter((s) => s.llm !== null).map((s) => ({ shadow: s.shadow, ...s.llm }))
          if (shadows.length === 0) throw new PenumbraError('PENUMBRA_NOT_FOUND', 'no shadow has seen an LLM answer yet')
          return json(res, 200, { generatedAt: r.generatedAt, shadows })
        }
        case '/noise':
          return json(res, 200, await b.noise())
        case '/quality':
          return json(res, 200, await b.quality())
        case '/backends':
          return json(res, 200, await b.backends())
        case '/primary':
          return json(res, 200, await b.primary())
        case '/experiments': {
          const list = await this.#experiments()
          if (url.searchParams.get('history') !== '1') return json(res, 200, list)
          return json(res, 200, list.map((e) => ({ ...e, history: this.#history.of(e.name) })))
        }
        case '/drift':
          if (b.drift !== undefined) return json(res, 200, await b.drift())
          break
        case '/assertions': {
          if (b.assertions === undefined) break
          const limit = url.searchParams.get('limit')
          const n = limit === null ? undefined : Number(limit)
          if (n !== undefined && (!Number.isInteger(n) || n < 1)) throw new PenumbraError('PENUMBRA_INVALID_REQUEST', 'limit: must be a positive integer')
          return json(res, 200, await b.assertions({ model: url.searchParams.get('model') ?? undefined, assertion: url.searchParams.get('assertion') ?? undefined, limit: n }))
        }
        case '/canary':
          if (b.canary !== undefined) return json(res, 200, await b.canary())
          break
        case '/':
          if (b.statusPage !== undefined) return send(res, 200, b.statusPage(), 'text/html; charset=utf-8')
          break
      }
      if (path.startsWith('/mismatches/')) {
        const found = await b.mismatch(decodeSegment(path.slice('/mismatches/'.length)))
        if (found === undefined || found === null) throw new PenumbraError('PENUMBRA_NOT_FOUND', 'no such mismatch (it may have been evicted)')
        return json(res, 200, found)
      }
      if (path.startsWith('/experiments/')) {
        const name = decodeSegment(path.slice('/experiments/'.length))
        const one = (await this.#experiments()).find((e) => e.name === name)
        if (one === undefined) throw new PenumbraError('PENUMBRA_NOT_FOUND', `no experiment named "${name}"`)
        return json(res, 200, url.searchParams.get('history') === '1' ? { ...one, history: this.#history.of(name) } : one)
      }
      if (path.startsWith('/shadows/')) {
        const name = decodeSegment(path.slice('/shadows/'.length))
        const list = await b.shadows() as Array<{ name: string }>
        const one = list.find((s) => s.name === name)
        if (one === undefined) throw new PenumbraError('PENUMBRA_NOT_FOUND', `no shadow named "${name}"`)
        return json(res, 200, one)
      }
      throw new PenumbraError('PENUMBRA_NOT_FOUND', `no admin endpoint ${method} ${path}`)
    }

    if (method === 'PUT' && path === '/primary') {
      this.#authorize(req)
      const body = parseBody(primarySwitchBody, await readBody(req))
      return json(res, 200, await b.switchPrimary(body, clientAddress(req)))
    }
    if (method === 'POST' && path === '/primary/rollback') {
      this.#authorize(req)
      return json(res, 200, await b.rollbackPrimary(clientAddress(req)))
    }
    if (method === 'POST' && path === '/drift/reference' && b.pinDriftReference !== undefined) {
      this.#authorize(req)
      const text = await readBody(req)
      const body = text.trim() === '' ? {} : parseBody(driftReferenceBody, text)
      return json(res, 200, await b.pinDriftReference(body.model))
    }
    if (method === 'POST' && path.startsWith('/canary/') && CANARY_COMMANDS.has(path.slice('/canary/'.length)) && b.canaryCommand !== undefined) {
      this.#authorize(req)
      return json(res, 200, await b.canaryCommand(path.slice('/canary/'.length) as 'start', clientAddress(req)))
    }
    if (method === 'PUT' && path === '/canary/weight' && b.canaryWeight !== undefined) {
      this.#authorize(req)
      return json(res, 200, await b.canaryWeight(parseBody(canaryWeightBody, await readBody(req)), clientAddress(req)))
    }
    if (method === 'POST' && path === '/events') {
      this.#authorize(req)
      const ndjson = /^application\/(x-)?ndjson\b/i.test(req.headers['content-type'] ?? '')
      const events = parseEvents(await readBody(req, MAX_EVENTS_BODY), ndjson)
      if (events === null) throw new PenumbraError('PENUMBRA_INVALID_REQUEST', 'body: must be a JSON event, a JSON array of events, or application/x-ndjson')
      if (events.length > MAX_EVENTS) throw new PenumbraError('PENUMBRA_BODY_TOO_LARGE', `at most ${MAX_EVENTS} events per call (got ${events.length})`)
      return json(res, 200, await b.postEvents(events))
    }
    if (method === 'POST' && path === '/feedback') {
      this.#authorize(req)
      const ndjson = /^application\/(x-)?ndjson\b/i.test(req.headers['content-type'] ?? '')
      const items = parseFeedbackBody(await readBody(req, MAX_EVENTS_BODY), ndjson)
      if (items === null) throw new PenumbraError('PENUMBRA_INVALID_REQUEST', 'body: must be a JSON label, a JSON array of labels, or application/x-ndjson')
      if (items.length > MAX_FEEDBACK) throw new PenumbraError('PENUMBRA_BODY_TOO_LARGE', `at most ${MAX_FEEDBACK} labels per call (got ${items.length})`)
      return json(res, 200, await b.postFeedback(items))
    }
    if (method === 'PATCH' && path.startsWith('/experiments/')) {
      this.#authorize(req)
      const name = decodeSegment(path.slice('/experiments/'.length))
      const patch = parseBody(experimentPatchBody, await readBody(req), ' (traffic and enabled can be changed at runtime)')
      return json(res, 200, await b.patchExperiment(name, patch))
    }
    if (method === 'PATCH' && path.startsWith('/shadows/')) {
      this.#authorize(req)
      const name = decodeSegment(path.slice('/shadows/'.length))
      const patch = parsePatch(await readBody(req))
      return json(res, 200, await b.patchShadow(name, patch))
    }
    throw new PenumbraError('PENUMBRA_NOT_FOUND', `no admin endpoint ${method} ${path}`)
  }

  /** The experiments with their analysis, each look noted in the history. */
  async #experiments (): Promise<Array<{ name: string, analysis?: ExperimentAnalysis }>> {
    const list = await this.#backend.experiments() as Array<{ name: string, analysis?: ExperimentAnalysis }>
    const now = Date.now()
    for (const e of list) if (e.analysis !== undefined) this.#history.note(e.name, e.analysis, now)
    this.#history.keep(new Set(list.map((e) => e.name)))
    return list
  }

  /**
   * The chaos endpoints: 403 while chaos is disabled; otherwise every one of them, reads
   * included, needs the token (chaos cannot be enabled without one).
   */
  async #chaos (req: IncomingMessage, res: ServerResponse, method: string, path: string): Promise<void> {
    const b = this.#backend
    if (b.chaosEnabled?.() !== true) throw new PenumbraError('PENUMBRA_CHAOS_DISABLED', 'chaos is disabled (chaos.enabled: false in the config)')
    this.#authorize(req)
    const who = clientAddress(req)
    if (path === '/chaos/experiments') {
      if (method === 'GET' || method === 'HEAD') return json(res, 200, await b.chaosList!())
      if (method === 'POST') {
        const spec = parseBody(chaosExperimentSchema, await readBody(req))
        return json(res, 201, await b.chaosStart!(spec, who))
      }
    }
    if (method === 'DELETE' && path === '/chaos') return json(res, 200, { stopped: await b.chaosStopAll!(who) })
    if (method === 'DELETE' && path.startsWith('/chaos/experiments/')) {
      return json(res, 200, await b.chaosStop!(decodeSegment(path.slice('/chaos/experiments/'.length)), who))
    }
    throw new PenumbraError('PENUMBRA_NOT_FOUND', `no admin endpoint ${method} ${path}`)
  }

  #readNeedsToken (path: string): boolean {
    if (path === '/metrics') return this.#protectMetrics
    return this.#protectReads && !PROBES.has(path) && path !== '/'
  }

  #authorize (req: IncomingMessage): void {
    if (this.#token === null) return
    const h = req.headers.authorization ?? ''
    const m = /^Bearer\s+(.+)$/i.exec(h)
    // Compare digests in constant time, so the token's length and prefix do not leak.
    if (m === null || !timingSafeEqual(digest(m[1]!.trim()), this.#token)) {
      throw new PenumbraError('PENUMBRA_UNAUTHORIZED', 'this admin endpoint needs Authorization: Bearer <admin.token>')
    }
  }

  #fail (res: ServerResponse, err: unknown): void {
    if (err instanceof PenumbraError) {
      const headers = err.statusCode === 401 ? { 'www-authenticate': 'Bearer realm="penumbra-admin"' } : undefined
      json(res, err.statusCode, { error: err.code, message: err.message }, headers)
      return
    }
    this.#log.error({ err }, 'admin request failed')
    json(res, 500, { error: 'PENUMBRA_INTERNAL', message: (err as Error).message })
  }

  close (): Promise<void> {
    clearInterval(this.#sampler)
    return new Promise((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
  }
}

function clientAddress (req: IncomingMessage): string {
  return `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`
}

function parseJson (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    throw new PenumbraError('PENUMBRA_INVALID_REQUEST', 'body: must be a JSON object')
  }
}

function decodeSegment (s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    throw new PenumbraError('PENUMBRA_INVALID_REQUEST', 'path: invalid percent-encoding')
  }
}

function digest (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

const shadowPatchBody = z.strictObject({
  sampleRate: z.number('must be a number within 0..1').min(0, 'must be a number within 0..1').max(1, 'must be a number within 0..1').optional(),
  enabled: z.boolean('must be true or false').optional()
}).refine((p) => p.sampleRate !== undefined || p.enabled !== undefined, 'give sampleRate and/or enabled')

const experimentPatchBody = z.strictObject({
  traffic: z.number('must be a number within (0, 1]').gt(0, 'must be a number within (0, 1]').max(1, 'must be a number within (0, 1]').optional(),
  enabled: z.boolean('must be true or false').optional()
}).refine((p) => p.traffic !== undefined || p.enabled !== undefined, 'give traffic and/or enabled')

const driftReferenceBody = z.strictObject({
  model: z.string('must be a model name').min(1, 'must be a model name').optional()
})

/** A body parsed by a zod schema; 400 PENUMBRA_INVALID_REQUEST naming each bad key. */
function parseBody<T> (schema: z.ZodType<T>, text: string, unknownHint = ''): T {
  const parsed = schema.safeParse(parseJson(text))
  if (parsed.success) return parsed.data
  throw new PenumbraError('PENUMBRA_INVALID_REQUEST', parsed.error.issues.map((i) => {
    if (i.code === 'unrecognized_keys') return i.keys.map((k) => `${k}: unknown key${unknownHint}`).join('; ')
    if (i.code === 'invalid_type' && i.path.length === 0) return 'body: must be a JSON object'
    return `${i.path.length > 0 ? i.path.join('.') : 'body'}: ${i.message}`
  }).join('; '))
}

function parsePatch (text: string): { sampleRate?: number, enabled?: boolean } {
  return parseBody(shadowPatchBody, text, ' (sampleRate and enabled can be changed at runtime)')
}

function readBody (req: IncomingMessage, max = MAX_ADMIN_BODY): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let bytes = 0
    req.on('data', (c: Buffer) => {
      bytes += c.length
      if (bytes > max) {
        reject(new PenumbraError('PENUMBRA_BODY_TOO_LARGE', `body: larger than ${max} bytes`))
        req.destroy()
        return
      }
      chunks.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

function send (res: ServerResponse, status: number, body: string, contentType: string, extra?: Record<string, string>): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...extra })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

function json (res: ServerResponse, status: number, value: unknown, extra?: Record<string, string>): void {
  send(res, status, JSON.stringify(value, null, 2) + '\n', 'application/json; charset=utf-8', extra)
}
