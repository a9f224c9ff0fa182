import { z } from 'zod'
import { overridable } from './overridable.js'
import { compilePathGlob } from '../shadow/sampler.js'
import { llmSchema, shadowLlmSchema } from './llm-schema.js'
import { feedbackSchema } from './feedback-schema.js'
import { chaosSchema, checkChaos } from './chaos-schema.js'
import { assertionsSection, checkDriftSections, driftSection } from './drift-schema.js'
import { canarySchema, checkCanary } from './canary-schema.js'

// The config schema is the public contract of issues #2, #3 and #4: every key here is documented
// in README.md ("Configuration reference"). Objects are strict so that a typo is an error, not a
// silently ignored key.

const port = z.number().int().min(0, 'must be a port number 0..65535').max(65535, 'must be a port number 0..65535')
const host = z.string().min(1, 'must be a host name or IP address')
const positiveMs = z.number().int().min(1, 'must be a whole number of milliseconds >= 1')

/** An absolute http(s) URL with no path beyond "/", no query and no credentials. */
const upstreamUrl = z.string().superRefine((value, ctx) => {
  let u: URL
  try {
    u = new URL(value)
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be an http(s) URL' })
    return
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    ctx.addIssue({ code: 'custom', message: 'must be an http(s) URL' })
  } else if (u.username !== '' || u.password !== '') {
    ctx.addIssue({ code: 'custom', message: 'must not contain credentials (set them as headers instead)' })
  } else if ((u.pathname !== '/' && u.pathname !== '') || u.search !== '' || u.hash !== '') {
    ctx.addIssue({ code: 'custom', message: 'must be an origin only (scheme, host, port), without path or query' })
  }
})

const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be an HTTP header name (RFC 9110 token)')
  .transform((s) => s.toLowerCase())

const regexString = z.string().superRefine((value, ctx) => {
  try {
    // eslint-disable-next-line no-new
    new RegExp(value)
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `must be a valid regular expression (${(err as Error).message})` })
  }
})

/** RFC 6901 JSON Pointer, where a `*` segment matches any array index or object key. */
export const jsonPointer = z.string().regex(/^(\/([^/~]|~[01])*)*$/, 'must be a JSON Pointer (RFC 6901), e.g. /predictions/*/label')

const numeric = z.strictObject({
  absTol: z.number().min(0, 'must be >= 0').default(1e-6),
  relTol: z.number().min(0, 'must be >= 0').default(1e-3)
})

const arraysMode = z.enum(['ordered', 'unordered'])

const pathRule = z.strictObject({
  numeric: z.strictObject({
    absTol: z.number().min(0, 'must be >= 0').optional(),
    relTol: z.number().min(0, 'must be >= 0').optional()
  }).optional(),
  arrays: arraysMode.optional(),
  ignore: z.boolean().optional()
})

const redact = z.strictObject({
  headers: z.array(headerName).default(['authorization', 'cookie', 'set-cookie', 'proxy-authorization', 'x-api-key']),
  paths: z.array(jsonPointer).default([]),
  // Query parameters whose values are credentials by convention; "*" redacts every value.
  query: z.array(z.string().min(1, 'must not be empty')).default(['api_key', 'apikey', 'key', 'token', 'access_token', 'sig', 'signature', 'password', 'secret'])
})

const mismatches = z.strictObject({
  keep: z.number().int().min(0, 'must be >= 0').default(1000),
  /**
   * Records one shadow may hold, so a busy shadow cannot evict every other shadow's (null:
   * `keep / number of shadows`, at least 10). Within `keep` and `maxBytes`.
   */
  keepPerShadow: z.number().int().min(1, 'must be >= 1').nullable().default(null),
  maxBytes: z.number().int().min(1024, 'must be >= 1024').default(16 * 1024 * 1024),
  sink: z.string().min(1).nullable().default(null),
  redact: redact.prefault({})
})

const noise = z.strictObject({
  enabled: z.boolean().default(false),
  sampleRate: z.number().min(0, 'must be within 0..1').max(1, 'must be within 0..1').default(0.05),
  minSamples: z.number().int().min(1, 'must be >= 1').default(200),
  margin: z.number().min(0, 'must be >= 0').max(1, 'must be <= 1').default(0.05)
})

export const compareFormats = ['auto', 'kserve-v1', 'oip-v2', 'mlflow', 'openai-chat', 'openai-completions', 'openai-responses', 'json'] as const

const compareShape = {
  enabled: z.boolean().default(true),
  format: z.enum(compareFormats).default('auto'),
  ignore: z.array(jsonPointer).default([]),
  numeric: numeric.prefault({}),
  paths: z.record(jsonPointer, pathRule).default({}),
  arrays: arraysMode.default('ordered'),
  statusCodes: z.boolean().default(true),
  headers: z.array(headerName).default(['content-type']),
  maxBodyBytes: z.number().int().min(1, 'must be >= 1').default(4 * 1024 * 1024),
  topK: z.number().int().min(1, 'must be >= 1').default(5),
  textSimilarity: z.number().min(0, 'must be within 0..1').max(1, 'must be within 0..1').default(0.9),
  noise: noise.prefault({}),
  mismatches: mismatches.prefault({}),
  /**
   * Jobs whose captured responses hold at least this many bytes are compared on a worker thread,
   * off the event loop; smaller ones on the event loop in 1 ms slices (cheaper than a thread
   * round trip). 0: all on the thread; null: none.
   */
  workerMinBytes: z.number().int().min(0, 'must be >= 0').nullable().default(64 * 1024),
  /** Pending comparisons above this are dropped and counted: a CPU-heavy diff never starves the proxy. */
  maxPending: z.number().int().min(1, 'must be >= 1').default(1000),
  /** …and at most this many bytes of captured bodies waiting. */
  maxPendingBytes: z.number().int().min(1024, 'must be >= 1024').default(64 * 1024 * 1024)
}

export const compareSchema = z.strictObject(compareShape)

/**
 * Per-shadow overrides: the keys of `compare` that are per shadow, merged over the top-level
 * `compare` (src/compare/merge-config.ts). `mismatches`, `workerMinBytes`, `maxPending` and
 * `maxPendingBytes` are process-wide.
 */
const compareOverride = overridable(compareShape, ['enabled', 'format', 'ignore', 'numeric', 'paths', 'arrays', 'statusCodes', 'headers', 'maxBodyBytes', 'topK', 'textSimilarity', 'noise'])

/** Names of backends (and of shadows): they become metric label values, so they are bounded. */
const backendName = z.string().regex(/^[a-z0-9_-]{1,32}$/, 'must match [a-z0-9_-]{1,32}')

/** One model server (`backends.<name>`, or the legacy `primary: {…}`). */
export const backend = z.strictObject({
  url: upstreamUrl,
  /** Time to the response head, then the longest gap between body chunks (undici's semantics). */
  timeoutMs: positiveMs.default(30_000),
  connectTimeoutMs: positiveMs.default(5000),
  connections: z.number().int().min(1, 'must be >= 1').default(128),
  keepAliveTimeoutMs: positiveMs.default(4000),
  /** Forward the client's Host instead of the backend's own (virtual-hosted model servers). */
  preserveHost: z.boolean().default(false)
})

/**
 * `primary`: a backend name, or (the form before named backends) a backend object. Parsed by
 * its form rather than as a union, so that an error names the key inside the object
 * (`primary.timeoutMs`), not only "no union member matched".
 */
const primaryRef = z.unknown().transform((value, ctx): string | z.output<typeof backend> => {
  if (value === undefined) {
    ctx.addIssue({ code: 'custom', message: 'is required' })
    return z.NEVER
  }
  const r = typeof value === 'string' ? backendName.safeParse(value) : backend.safeParse(value)
  if (r.success) return r.data
  for (const issue of r.error.issues) ctx.addIssue({ ...issue, path: issue.path } as Parameters<typeof ctx.addIssue>[0])
  return z.NEVER
})

const sampleBy = z.string().regex(/^(random|(header|cookie|query):[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/,
  'must be random, header:<name>, cookie:<name> or query:<name>')

const shadow = z.strictObject({
  name: z.string().regex(/^[a-z0-9_-]{1,32}$/, 'must match [a-z0-9_-]{1,32}'),
  /** Either `url` (a pool of the shadow's own, sized by maxConcurrency) or `backend` (a named backend's pool). */
  url: upstreamUrl.optional(),
  backend: backendName.optional(),
  enabled: z.boolean().default(true),
  sampleRate: z.number().min(0, 'must be within 0..1').max(1, 'must be within 0..1').default(1),
  sampleBy: sampleBy.default('random'),
  match: z.strictObject({
    methods: z.array(z.string().regex(/^[A-Z]+$/, 'must be an upper-case HTTP method')).min(1).default(['POST']),
    paths: z.array(z.string().min(1).startsWith('/', 'must start with /')).default(['/**'])
  }).prefault({}),
  timeoutMs: positiveMs.default(5000),
  connectTimeoutMs: positiveMs.default(2000),
  maxConcurrency: z.number().int().min(1, 'must be >= 1').default(64),
  /** Pool size; defaults to maxConcurrency, so a mirrored request never waits for a socket. */
  connections: z.number().int().min(1, 'must be >= 1').optional(),
  maxBodyBytes: z.number().int().min(0, 'must be >= 0').default(1024 * 1024),
  maxResponseBytes: z.number().int().min(1, 'must be >= 1').default(4 * 1024 * 1024),
  headers: z.strictObject({
    set: z.record(headerName, z.string().regex(/^[\t\x20-\x7e\x80-\xff]*$/, 'must be a valid header value (no CR, LF or control characters)')).default({}),
    remove: z.array(headerName).default([])
  }).prefault({}),
  rewrite: z.strictObject({
    path: z.strictObject({ from: regexString, to: z.string() }).optional(),
    json: z.record(jsonPointer, z.unknown()).optional()
  }).optional(),
  compare: compareOverride.optional(),
  /** LLM shadow safety (issue #16, src/config/llm-schema.ts). */
  llm: shadowLlmSchema.prefault({})
})

const nameRe = /^[a-z0-9_-]{1,32}$/
const experimentName = z.string().regex(nameRe, 'must match [a-z0-9_-]{1,32}')

const requestMatch = z.strictObject({
  methods: z.array(z.string().regex(/^[A-Z]+$/, 'must be an upper-case HTTP method')).min(1).default(['POST']),
  paths: z.array(z.string().min(1).startsWith('/', 'must start with /')).default(['/**'])
})

/** An A/B experiment (issue #17): units hashed into a layer's slots, variants that answer clients. */
const experiment = z.strictObject({
  name: experimentName,
  /** Where the unit comes from; requests without it are not enrolled. */
  unit: z.string().regex(/^(header|cookie|query):[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be header:<name>, cookie:<name> or query:<name>'),
  match: requestMatch.prefault({}),
  /** Experiments in one layer never share a unit. Default: a layer of its own (its name). */
  layer: z.string().regex(nameRe, 'must match [a-z0-9_-]{1,32}').optional(),
  /** Share of the layer's units enrolled, in (0, 1]. */
  traffic: z.number().gt(0, 'must be within (0, 1]').max(1, 'must be within (0, 1]').default(1),
  /** Every rule must hold, else the request is not enrolled (`targeting`). */
  targeting: z.array(z.strictObject({ header: headerName, in: z.array(z.string()).min(1) })).default([]),
  variants: z.array(z.strictObject({
    name: experimentName,
    backend: backendName,
    weight: z.number().gt(0, 'must be > 0').default(1)
  })).min(2, 'needs at least two variants (the first is the control)'),
  metrics: z.array(z.strictObject({ name: experimentName, kind: z.enum(['binary', 'mean']) })).default([]),
  /** Smallest effect worth detecting: absolute for binary metrics, relative for means. */
  minEffect: z.number().gt(0, 'must be > 0').default(0.02),
  alpha: z.number().gt(0, 'must be within (0, 0.5]').max(0.5, 'must be within (0, 0.5]').default(0.05),
  /** Salt of the variant hash (default: the name); change it to reshuffle an experiment. */
  seed: z.string().min(1).optional(),
  enabled: z.boolean().default(true)
})

export const configSchema = z.strictObject({
  listen: z.strictObject({
    host: host.default('127.0.0.1'),
    port: port.default(8080),
    /** Above the idle timeout of any load balancer in front (AWS ALB: 60 s). */
    keepAliveTimeoutMs: positiveMs.default(65_000),
    /**
     * Time a client has to send its request head (408 after it). Short, against slow-header
     * clients that hold connections open; checked every second. Idle keep-alive connections are
     * keepAliveTimeoutMs's, not this.
     */
    headersTimeoutMs: positiveMs.default(10_000),
    requestTimeoutMs: z.number().int().min(0).default(300_000),
    /** Largest request head in bytes (431 beyond), passed to node:http; default 16 KiB (set in the transform below). */
    maxHeaderBytes: z.number().int().min(1024, 'must be >= 1024').optional(),
    /** The name before issue #15 (kept working): same meaning as maxHeaderBytes. */
    maxHeaderSize: z.number().int().min(1024, 'must be >= 1024').optional(),
    /**
     * Largest request body in bytes; null: no limit. A larger Content-Length gets 413 before any
     * upstream is contacted; a chunked body that crosses it gets 413 and a closed connection.
     */
    maxBodyBytes: z.number().int().min(0, 'must be >= 0').nullable().default(100 * 1024 * 1024),
    /** Open client connections per process; above it a new connection is closed at once (and counted). */
    maxConnections: z.number().int().min(1, 'must be >= 1').default(10_000)
  }).prefault({}),
  admin: z.strictObject({
    enabled: z.boolean().default(true),
    host: host.default('127.0.0.1'),
    port: port.default(9901),
    token: z.string().min(8, 'must be at least 8 characters').nullable().default(null),
    /**
     * A file whose content (trimmed) is the token: a mounted Kubernetes Secret. Read at load and
     * at every reload. The environment variable PENUMBRA_ADMIN_TOKEN, when set, wins over both.
     */
    tokenFile: z.string().min(1).nullable().default(null),
    /** With a token: every admin endpoint but /healthz, /readyz and /metrics needs it (default: true when a token is set). */
    protectReads: z.boolean().optional(),
    /** With a token: /metrics needs it too (for scrapers that send a bearer token). */
    protectMetrics: z.boolean().default(false),
    /** How often the admin notes each experiment's analysis for the status page's cumulative-effect chart. */
    historyIntervalMs: z.number().int().min(100).max(3_600_000).default(10_000)
  }).prefault({}),
  /** Named model servers (issue #14). The legacy `primary: {url, …}` form adds one named `primary`. */
  backends: z.record(backendName, backend).default({}),
  /** The backend that answers clients: a name from `backends`, or (legacy) a backend of its own. */
  primary: primaryRef,
  proxy: z.strictObject({
    /** The pseudonym in `Via` (RFC 9110 §7.6.3). */
    via: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be an RFC 9110 token').default('penumbra'),
    requestIdHeader: headerName.default('x-request-id'),
    /** Answer 508 when our own `via` pseudonym is already in the request's Via (a loop). */
    loopDetection: z.boolean().default(true),
    xForwarded: z.boolean().default(true),
    /** WebSocket/Upgrade connections open or opening at once (each holds an upstream connection); 503 above. */
    maxUpgrades: z.number().int().min(1, 'must be >= 1').default(1024)
  }).prefault({}),
  sampling: z.strictObject({
    /** Salt of the sticky sampling hash: change it to reshuffle which keys are mirrored. */
    salt: z.string().default('penumbra')
  }).prefault({}),
  shadows: z.array(shadow).default([]).superRefine((list, ctx) => {
    const seen = new Set<string>()
    list.forEach((s, i) => {
      if (seen.has(s.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate shadow name "${s.name}"` })
      seen.add(s.name)
    })
  }),
  compare: compareSchema.prefault({}),
  experiments: z.array(experiment).default([]),
  /** Prediction log, labels and online quality (issue #19; src/config/feedback-schema.ts). */
  feedback: feedbackSchema.prefault({}),
  /** A canary release (issue #18, src/config/canary-schema.ts); null: none. */
  canary: canarySchema.nullable().default(null),
  /** How long a request id is kept for joining outcome events posted by request id. */
  experimentSettings: z.strictObject({
    eventWindowMs: positiveMs.default(24 * 60 * 60 * 1000)
  }).prefault({}),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    access: z.boolean().default(true),
    redact: z.array(z.string()).default([])
  }).prefault({}),
  shutdown: z.strictObject({ timeoutMs: positiveMs.default(10_000) }).prefault({}),
  /** LLM endpoints (issue #16, src/config/llm-schema.ts); after `log`, which a typo like `lgo` means. */
  llm: llmSchema.prefault({}),
  workers: z.number().int().min(1, 'must be >= 1').max(64, 'must be <= 64').default(1),
  /** Chaos experiments (issue #20, src/config/chaos-schema.ts). */
  chaos: chaosSchema.prefault({}),
  drift: driftSection.optional(),
  assertions: assertionsSection
}).superRefine((cfg, ctx) => {
  checkDriftSections(cfg, ctx)
  const legacy = typeof cfg.primary === 'object'
  if (legacy && 'primary' in cfg.backends) {
    ctx.addIssue({ code: 'custom', path: ['backends', 'primary'], message: 'is also defined by the object form of `primary`: name the backend in `primary` instead (primary: primary)' })
  }
  const backends: Record<string, { url: string }> = legacy ? { ...cfg.backends, primary: cfg.primary as { url: string } } : cfg.backends
  if (!legacy && !((cfg.primary as string) in backends)) {
    ctx.addIssue({ code: 'custom', path: ['primary'], message: `names no backend ("${String(cfg.primary)}"; defined: ${Object.keys(backends).join(', ') || 'none'})` })
  }
  for (const [name, b] of Object.entries(backends)) {
    if (pointsAtSelf(b.url, cfg.listen)) {
      ctx.addIssue({ code: 'custom', path: legacy && name === 'primary' ? ['primary', 'url'] : ['backends', name, 'url'], message: 'points at penumbra itself (listen.host:listen.port): a request loop' })
    }
  }
  cfg.shadows.forEach((s, i) => {
    if ((s.url === undefined) === (s.backend === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['shadows', i], message: 'needs exactly one of `url` and `backend`' })
    } else if (s.backend !== undefined && !(s.backend in backends)) {
      ctx.addIssue({ code: 'custom', path: ['shadows', i, 'backend'], message: `names no backend ("${s.backend}"; defined: ${Object.keys(backends).join(', ') || 'none'})` })
    }
    // The upstream label of a shadow's calls is its name: a name that is another backend's would
    // put two different servers' latency in one series.
    if (s.name in backends && s.backend !== s.name) {
      ctx.addIssue({ code: 'custom', path: ['shadows', i, 'name'], message: `is the name of backend "${s.name}": name the shadow after its own backend, or differently` })
    }
  })
  if (cfg.listen.maxHeaderSize !== undefined && cfg.listen.maxHeaderBytes !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['listen', 'maxHeaderSize'], message: 'is the old name of listen.maxHeaderBytes: set only one of them' })
  }
  if (cfg.listen.requestTimeoutMs > 0 && cfg.listen.headersTimeoutMs > cfg.listen.requestTimeoutMs) {
    ctx.addIssue({ code: 'custom', path: ['listen', 'headersTimeoutMs'], message: 'must be <= listen.requestTimeoutMs (Node refuses to start otherwise)' })
  }
  checkExperiments(cfg.experiments, backends, ctx)
  checkChaos(cfg.chaos, backends, cfg.shadows, ctx)
  checkCanary(cfg.canary, backends, typeof cfg.primary === 'string' ? cfg.primary : 'primary', ctx)
  if (cfg.admin.token !== null && cfg.admin.tokenFile !== null) {
    ctx.addIssue({ code: 'custom', path: ['admin', 'tokenFile'], message: 'give admin.token or admin.tokenFile, not both' })
  }
  if (cfg.admin.enabled && cfg.admin.port !== 0 && cfg.admin.port === cfg.listen.port && cfg.admin.host === cfg.listen.host) {
    ctx.addIssue({ code: 'custom', path: ['admin', 'port'], message: 'must differ from listen.port' })
  }
}).transform((cfg) => {
  // One shape for the rest of penumbra: every backend is in `backends`, `primary` is a name;
  // listen.maxHeaderSize (the old name) becomes listen.maxHeaderBytes.
  const { maxHeaderSize, ...rest } = cfg.listen
  const listen = { ...rest, maxHeaderBytes: rest.maxHeaderBytes ?? maxHeaderSize ?? 16 * 1024 }
  if (typeof cfg.primary === 'string') return { ...cfg, listen, primary: cfg.primary }
  return { ...cfg, listen, backends: { ...cfg.backends, primary: cfg.primary }, primary: 'primary' }
})

function pointsAtSelf (url: string, listen: { host: string, port: number }): boolean {
  if (!URL.canParse(url) || listen.port === 0) return false
  const p = new URL(url)
  return Number(p.port || (p.protocol === 'https:' ? 443 : 80)) === listen.port &&
    (p.hostname === listen.host || (['127.0.0.1', 'localhost', '[::1]'].includes(p.hostname) && ['127.0.0.1', 'localhost', '0.0.0.0', '::'].includes(listen.host)))
}

/**
 * Problems worth a warning that do not stop penumbra: two backend names for one origin (their
 * metrics then split one server's traffic in two).
 */
export function configWarnings (cfg: Config): string[] {
  const out: string[] = []
  const byOrigin = new Map<string, string>()
  for (const [name, b] of Object.entries(cfg.backends)) {
    const origin = new URL(b.url).origin
    const other = byOrigin.get(origin)
    if (other !== undefined) out.push(`backends.${name}: same origin as backends.${other} (${origin}): one server under two names`)
    else byOrigin.set(origin, name)
  }
  // Two experiments of different layers that can match one request: only the first listed that
  // enrols the unit routes it, so the second sees a biased population.
  cfg.experiments.forEach((e, i) => {
    for (let j = 0; j < i; j++) {
      const o = cfg.experiments[j]!
      if ((o.layer ?? o.name) === (e.layer ?? e.name)) continue
      if (!e.match.methods.some((m) => o.match.methods.includes(m))) continue
      if (pathsOverlap(e.match.paths, o.match.paths)) out.push(`experiments[${i}] (${e.name}): its paths overlap those of experiments[${j}] (${o.name}) in another layer; a request both match is routed by the first listed that enrols it`)
    }
  })
  const a = cfg.admin
  if (a.token === null && (a.protectReads === true || a.protectMetrics)) out.push('admin.protectReads/protectMetrics: no admin.token is set, so nothing is protected')
  if (a.enabled && a.token === null && !isLoopback(a.host)) out.push(`admin.host: ${a.host} is reachable from other machines and no admin.token is set: anyone who reaches it can switch the primary and read stored requests`)
  return out
}

/** The validated, defaulted configuration. Immutable once loaded. */
export type Config = z.output<typeof configSchema>
export type ShadowConfig = Config['shadows'][number]
export type BackendConfig = Config['backends'][string]
export type CompareConfig = z.output<typeof compareSchema>
export type CompareOverride = NonNullable<ShadowConfig['compare']>
export type CompareFormat = (typeof compareFormats)[number]

/** 127.0.0.0/8, ::1 and localhost: addresses only this machine reaches. */
function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

type ExperimentInput = z.output<typeof experiment>

/**
 * Experiments: unique names, variants naming backends, unique variant and metric names, and
 * per layer a total traffic of at most 1 (each experiment owns a disjoint share of the slots).
 */
function checkExperiments (list: ExperimentInput[], backends: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const names = new Set<string>()
  const layers = new Map<string, number>()
  list.forEach((e, i) => {
    if (names.has(e.name)) {
      ctx.addIssue({ code: 'custom', path: ['experiments', i, 'name'], message: `duplicate experiment name "${e.name}"` })
      return
    }
    names.add(e.name)
    const variants = new Set<string>()
    e.variants.forEach((v, j) => {
      if (!(v.backend in backends)) ctx.addIssue({ code: 'custom', path: ['experiments', i, 'variants', j, 'backend'], message: `names no backend ("${v.backend}"; defined: ${Object.keys(backends).join(', ') || 'none'})` })
      if (variants.has(v.name)) ctx.addIssue({ code: 'custom', path: ['experiments', i, 'variants', j, 'name'], message: `duplicate variant name "${v.name}"` })
      variants.add(v.name)
    })
    const metrics = new Set<string>()
    e.metrics.forEach((m, j) => {
      if (metrics.has(m.name)) ctx.addIssue({ code: 'custom', path: ['experiments', i, 'metrics', j, 'name'], message: `duplicate metric name "${m.name}"` })
      metrics.add(m.name)
    })
    if (!(e.traffic > 0 && e.traffic <= 1)) return // reported on the key itself
    const layer = e.layer ?? e.name
    const sum = (layers.get(layer) ?? 0) + e.traffic
    layers.set(layer, sum)
    if (sum > 1 + 1e-9) ctx.addIssue({ code: 'custom', path: ['experiments', i, 'traffic'], message: `layer "${layer}": the traffic of its experiments sums to ${Math.round(sum * 1000) / 1000}, past 1 (each owns a disjoint share of the layer's units)` })
  })
}

/** Could some path match a glob of each list? (`/**`, equal globs, or one glob matching the other taken literally.) */
function pathsOverlap (a: readonly string[], b: readonly string[]): boolean {
  const literal = (g: string): string => g.replace(/\*+/g, 'x')
  for (const x of a) {
    for (const y of b) {
      if (x === '/**' || y === '/**' || x === y) return true
      if (compilePathGlob(x).test(literal(y)) || compilePathGlob(y).test(literal(x))) return true
    }
  }
  return false
}
