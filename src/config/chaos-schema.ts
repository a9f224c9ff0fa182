import { z } from 'zod'

// Chaos experiments (issue #20): the `chaos` config section and the body of
// `POST /chaos/experiments`, one schema for both so the file and the API accept the same thing.

const name = z.string().regex(/^[a-z0-9_-]{1,32}$/, 'must match [a-z0-9_-]{1,32}')
const ms = z.number().min(0, 'must be >= 0 milliseconds')
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be an HTTP header name (RFC 9110 token)').transform((s) => s.toLowerCase())
const share = (what: string): z.ZodNumber => z.number(`must be a number within (0, 1] (${what})`).gt(0, `must be within (0, 1] (${what})`).max(1, `must be within (0, 1] (${what})`)
const pointer = z.string().regex(/^(\/([^/~]|~[01])*)+$/, 'must be a JSON Pointer (RFC 6901) to a field, e.g. /predictions/0/scores')

/** `delay`: fixed (`ms`), uniform within [minMs, maxMs], or normal (meanMs, stdMs) clamped to [minMs, maxMs]. */
const delay = z.strictObject({
  kind: z.literal('delay'),
  distribution: z.enum(['fixed', 'uniform', 'normal']).default('fixed'),
  ms: ms.optional(),
  minMs: ms.optional(),
  maxMs: ms.optional(),
  meanMs: ms.optional(),
  stdMs: ms.optional()
}).superRefine((f, ctx) => {
  const need = (k: 'ms' | 'minMs' | 'maxMs' | 'meanMs' | 'stdMs'): void => {
    if (f[k] === undefined) ctx.addIssue({ code: 'custom', path: [k], message: `is required for a ${f.distribution} delay` })
  }
  if (f.distribution === 'fixed') need('ms')
  if (f.distribution === 'uniform') { need('minMs'); need('maxMs') }
  if (f.distribution === 'normal') { need('meanMs'); need('stdMs') }
  if (f.minMs !== undefined && f.maxMs !== undefined && f.minMs > f.maxMs) ctx.addIssue({ code: 'custom', path: ['maxMs'], message: 'must be >= minMs' })
})

/** `abort`: answer `status` with a JSON body instead of the upstream, or reset the connection (`reset: true`). */
const abort = z.strictObject({
  kind: z.literal('abort'),
  status: z.number().int().min(200, 'must be an HTTP status 200..599').max(599, 'must be an HTTP status 200..599').optional(),
  body: z.unknown().optional(),
  reset: z.boolean().optional()
}).superRefine((f, ctx) => {
  if ((f.status === undefined) === (f.reset !== true)) ctx.addIssue({ code: 'custom', path: ['status'], message: 'give exactly one of `status` and `reset: true`' })
})

const slowBody = z.strictObject({ kind: z.literal('slow_body'), bytesPerSecond: z.number().int().min(1, 'must be >= 1') })
const timeout = z.strictObject({ kind: z.literal('timeout') })
const flipLabel = z.strictObject({ kind: z.literal('flip_label'), p: share('probability per instance') })
const scoreNoise = z.strictObject({ kind: z.literal('score_noise'), sigma: z.number().gt(0, 'must be > 0') })
const bias = z.strictObject({
  kind: z.literal('bias'),
  /** The class that gains probability mass: an index into the score vector, or a label. */
  toward: z.union([z.number().int().min(0), z.string().min(1)]),
  /** Share of every other class's mass moved to it, in (0, 1]. */
  strength: share('share of the other classes\' mass moved')
})
const stale = z.strictObject({ kind: z.literal('stale') })
const dropField = z.strictObject({ kind: z.literal('drop_field'), pointer })
const truncateText = z.strictObject({ kind: z.literal('truncate_text'), tokens: z.number().int().min(0, 'must be >= 0') })

export const faultSchema = z.discriminatedUnion('kind', [delay, abort, slowBody, timeout, flipLabel, scoreNoise, bias, stale, dropField, truncateText])

/** Fault kinds that change the answer's content (model faults); the others act on the transport. */
export const MODEL_FAULT_KINDS = ['flip_label', 'score_noise', 'bias', 'stale', 'drop_field', 'truncate_text'] as const
export const FAULT_KINDS = ['delay', 'abort', 'slow_body', 'timeout', ...MODEL_FAULT_KINDS] as const

const unitSource = z.string().regex(/^(header|cookie|query):[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be header:<name>, cookie:<name> or query:<name>')

export const scopeSchema = z.strictObject({
  /** Share of the matching requests that get the faults. */
  probability: share('share of matching requests').default(1),
  methods: z.array(z.string().regex(/^[A-Z]+$/, 'must be an upper-case HTTP method')).min(1).optional(),
  paths: z.array(z.string().min(1).startsWith('/', 'must start with /')).min(1).optional(),
  /** Only requests with this header (and, with `in`, one of these values). */
  header: z.strictObject({ name: headerName, in: z.array(z.string()).min(1).optional() }).optional(),
  /** Only these units (a header, cookie or query parameter of the request). */
  units: z.strictObject({ from: unitSource, in: z.array(z.string()).min(1) }).optional(),
  /** Only requests an A/B experiment assigned to this arm, `experiment=variant`. */
  variant: z.string().regex(/^[a-z0-9_-]{1,32}=[a-z0-9_-]{1,32}$/, 'must be <experiment>=<variant>').optional()
})

/** A target: a backend name, or `shadow:<name>`. */
const target = z.string().regex(/^(shadow:)?[a-z0-9_-]{1,32}$/, 'must be a backend name or shadow:<name>')

const experimentShape = {
  name,
  target,
  faults: z.array(faultSchema).min(1, 'needs at least one fault'),
  scope: scopeSchema.prefault({}),
  /** Required: every fault ends by itself. At most chaos.maxDurationMs. */
  durationMs: z.number('is required (every fault ends by itself)').int().min(1, 'must be >= 1')
}

/** `POST /chaos/experiments`. */
export const chaosExperimentSchema = z.strictObject(experimentShape).superRefine(checkFaultOrder)

/** `chaos.experiments[]`: the same, plus `startAt` for a scheduled game day. */
const scheduledExperiment = z.strictObject({
  ...experimentShape,
  /** When to start (ISO 8601); absent: when penumbra starts. */
  startAt: z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time, e.g. 2026-12-04T03:00:00Z' }).optional()
}).superRefine(checkFaultOrder)

/** One of each transport kind at most; `timeout` and `abort` answer instead of the upstream, so nothing else can follow them. */
function checkFaultOrder (e: { faults: Array<{ kind: string }> }, ctx: z.RefinementCtx): void {
  const seen = new Set<string>()
  e.faults.forEach((f, i) => {
    if (seen.has(f.kind)) ctx.addIssue({ code: 'custom', path: ['faults', i, 'kind'], message: `"${f.kind}" is listed twice` })
    seen.add(f.kind)
  })
  const ending = e.faults.findIndex((f) => f.kind === 'abort' || f.kind === 'timeout')
  if (ending !== -1 && e.faults.some((f) => f.kind !== 'delay' && f.kind !== e.faults[ending]!.kind)) {
    ctx.addIssue({ code: 'custom', path: ['faults', ending, 'kind'], message: `"${e.faults[ending]!.kind}" answers instead of the upstream: it combines only with "delay"` })
  }
}

export type FaultSpec = z.output<typeof faultSchema>
export type ChaosScope = z.output<typeof scopeSchema>
export type ChaosExperimentSpec = z.output<typeof chaosExperimentSchema>
export type ScheduledExperimentSpec = z.output<typeof scheduledExperiment>

const DEFAULTS = { maxClientShare: 0.05, maxDurationMs: 60 * 60 * 1000 }

/**
 * `chaos`. Off by default; while `enabled` is not true, any other chaos key is an error naming
 * it (a fault must never be armed by a file whose author thought chaos was off).
 */
export const chaosSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** Share of the last minute's client requests that faults may hit; beyond it client-facing faults pause. */
  maxClientShare: z.number().gt(0, 'must be within (0, 1]').max(1, 'must be within (0, 1]').optional(),
  /** Upper bound of every experiment's durationMs. */
  maxDurationMs: z.number().int().min(1, 'must be >= 1').optional(),
  experiments: z.array(scheduledExperiment).optional()
}).superRefine((c, ctx) => {
  if (c.enabled) return
  // A key at its default says nothing (and is what a validated config, e.g. GET /config or the
  // one a --workers primary hands its workers, carries): only a real setting is refused.
  const set = {
    maxClientShare: c.maxClientShare !== undefined && c.maxClientShare !== DEFAULTS.maxClientShare,
    maxDurationMs: c.maxDurationMs !== undefined && c.maxDurationMs !== DEFAULTS.maxDurationMs,
    experiments: c.experiments !== undefined && c.experiments.length > 0
  }
  for (const k of ['maxClientShare', 'maxDurationMs', 'experiments'] as const) {
    if (set[k]) ctx.addIssue({ code: 'custom', path: [k], message: 'chaos is disabled: set chaos.enabled: true to use chaos keys' })
  }
}).transform((c) => ({
  enabled: c.enabled,
  maxClientShare: c.maxClientShare ?? DEFAULTS.maxClientShare,
  maxDurationMs: c.maxDurationMs ?? DEFAULTS.maxDurationMs,
  experiments: c.experiments ?? []
}))

export type ChaosConfig = z.output<typeof chaosSchema>

/**
 * Cross-section checks (called from the config's superRefine): targets name a backend or a
 * shadow, durations within maxDurationMs, unique names.
 */
export function checkChaos (c: Partial<ChaosConfig>, backends: Record<string, unknown>, shadows: ReadonlyArray<{ name: string }>, ctx: z.RefinementCtx): void {
  // Also called when the section itself had issues (zod then skips its transform): defaults here.
  const max = c.maxDurationMs ?? DEFAULTS.maxDurationMs
  const names = new Set<string>()
  ;(c.experiments ?? []).forEach((e, i) => {
    if (names.has(e.name)) ctx.addIssue({ code: 'custom', path: ['chaos', 'experiments', i, 'name'], message: `duplicate chaos experiment name "${e.name}"` })
    names.add(e.name)
    const problem = targetProblem(e.target, Object.keys(backends), shadows.map((s) => s.name))
    if (problem !== null) ctx.addIssue({ code: 'custom', path: ['chaos', 'experiments', i, 'target'], message: problem })
    if (e.durationMs > max) ctx.addIssue({ code: 'custom', path: ['chaos', 'experiments', i, 'durationMs'], message: `must be <= chaos.maxDurationMs (${max})` })
  })
}

/** Why `target` names nothing, or null when it names a backend / a shadow. */
export function targetProblem (target: string, backends: readonly string[], shadows: readonly string[]): string | null {
  if (target.startsWith('shadow:')) {
    const s = target.slice('shadow:'.length)
    return shadows.includes(s) ? null : `names no shadow ("${s}"; defined: ${shadows.join(', ') || 'none'})`
  }
  return backends.includes(target) ? null : `names no backend ("${target}"; defined: ${backends.join(', ') || 'none'}); a shadow is shadow:<name>`
}
