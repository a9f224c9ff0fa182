import { z } from 'zod'
import { compileSchemaRule } from '../drift/schema-rule.js'

// The `drift:` and `assertions:` sections (issue #19, docs/drift.md). Hooked into schema.ts; the
// cross-section checks (schemas compile, names unique, --workers) are in checkDriftSections.

const positiveMs = z.number().int().min(1, 'must be a whole number of milliseconds >= 1')
const share = z.number().min(0, 'must be >= 0')
const pointer = z.string().regex(/^(\/([^/~]|~[01])*)*$/, 'must be a JSON Pointer (RFC 6901) into the instance, e.g. /scores ("" is the whole instance)')

const warnBelowAlert = { message: 'must be <= alert', path: ['warn'] }
const psiThresholds = z.strictObject({ warn: share.default(0.1), alert: share.default(0.25) }).refine((t) => t.warn <= t.alert, warnBelowAlert)
const jsThresholds = z.strictObject({ warn: share.default(0.1), alert: share.default(0.2) }).refine((t) => t.warn <= t.alert, warnBelowAlert)

/** `drift:` — output drift per model. Absent: off. */
export const driftSection = z.strictObject({
  enabled: z.boolean().default(true),
  /** The sliding window the current distribution is counted over, and the length of the `first` reference. */
  windowMs: positiveMs.default(60 * 60 * 1000),
  /** `first`: the first window after start; `pinned`: none until `POST /drift/reference`. */
  reference: z.enum(['first', 'pinned']).default('first'),
  /** Top-score bins: quantile edges of the reference (fewer when the reference repeats values). */
  bins: z.number().int().min(2, 'must be >= 2').max(100, 'must be <= 100').default(10),
  /** Label bins: the reference's most frequent classes, then `other`. */
  maxClasses: z.number().int().min(1, 'must be >= 1').max(100, 'must be <= 100').default(20),
  /** Predictions a reference and a window need before a statistic is computed (below: state `insufficient`). */
  minSamples: z.number().int().min(1, 'must be >= 1').default(100),
  /** Top scores kept to place the reference's quantile edges (a uniform reservoir beyond). */
  referenceSamples: z.number().int().min(100, 'must be >= 100').max(1_000_000, 'must be <= 1000000').default(10_000),
  /**
   * Share of the requests an experiment assigned to an arm, and no shadow mirrors, whose answer is
   * captured for drift and assertions (the arm answers the client; the copy is bounded).
   */
  experimentSampleRate: z.number().min(0, 'must be within 0..1').max(1, 'must be within 0..1').default(0.1),
  /** Share an empty bin counts as in PSI (ln 0 is undefined). */
  epsilon: z.number().gt(0, 'must be > 0').max(0.01, 'must be <= 0.01').default(1e-4),
  thresholds: z.strictObject({
    psi: psiThresholds.prefault({}),
    js: jsThresholds.prefault({})
  }).prefault({})
})

const numberOrNull = z.number().nullable().default(null)

const rule = z.strictObject({
  range: z.strictObject({ min: numberOrNull, max: numberOrNull }).optional(),
  oneOf: z.array(z.union([z.string(), z.number(), z.boolean(), z.null()])).min(1, 'must list at least one value').optional(),
  sum: z.strictObject({
    /** Pointer (with `*` wildcards) under the assertion's value to the numbers summed; "" is the value itself (a list of numbers). */
    path: z.string().regex(/^(\/([^/~]|~[01])*)*$/, 'must be a JSON Pointer, e.g. /* or /probabilities').default(''),
    to: z.number(),
    tol: z.number().min(0, 'must be >= 0').default(1e-6)
  }).optional(),
  schema: z.record(z.string(), z.unknown()).optional(),
  stable: z.union([
    z.literal(true),
    z.strictObject({
      windowMs: positiveMs.default(60 * 60 * 1000),
      maxEntries: z.number().int().min(1, 'must be >= 1').max(10_000_000, 'must be <= 10000000').default(100_000)
    })
  ]).optional()
}).superRefine((r, ctx) => {
  const given = RULE_KINDS.filter((k) => r[k] !== undefined)
  if (given.length !== 1) ctx.addIssue({ code: 'custom', message: `must have exactly one of ${RULE_KINDS.join(', ')} (got ${given.length === 0 ? 'none' : given.join(', ')})` })
})

/** The rule kinds, in the order documented. */
export const RULE_KINDS = ['range', 'oneOf', 'sum', 'schema', 'stable'] as const
export type RuleKind = (typeof RULE_KINDS)[number]

const assertion = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ . : - (it is a metric label)'),
  /** Pointer into each instance of an answer; "" is the whole instance. */
  path: pointer.default(''),
  /** The models it applies to (backend and shadow names); absent: every model. */
  models: z.array(z.string().min(1, 'must not be empty')).min(1, 'must name at least one model (or leave `models` out)').optional(),
  rule
})

/** `assertions:` — model assertions on every instance of every model's answer. */
export const assertionsSection = z.array(assertion).default([])

export type DriftConfig = z.output<typeof driftSection>
export type AssertionConfig = z.output<typeof assertion>

/**
 * Checks across keys: unique assertion names, every `schema` compiles (ajv, once here; a bad
 * schema names its key and exits 2), and drift is refused with `--workers` > 1: each worker
 * would see a share of the traffic with its own window and reference bins, and per-worker PSI
 * cannot be merged into the one number of `penumbra_prediction_drift`.
 */
export function checkDriftSections (cfg: { drift?: DriftConfig | undefined, assertions: AssertionConfig[], workers: number, backends: Record<string, unknown>, primary: unknown, shadows: Array<{ name: string }> }, ctx: z.RefinementCtx): void {
  const problem = driftWorkersProblem(cfg)
  if (problem !== null) ctx.addIssue({ code: 'custom', path: ['drift'], message: problem })
  // Models are backends (the legacy object `primary` is the backend "primary") and shadows.
  const models = new Set([...Object.keys(cfg.backends), ...(typeof cfg.primary === 'object' ? ['primary'] : []), ...cfg.shadows.map((sh) => sh.name)])
  const names = new Set<string>()
  cfg.assertions.forEach((a, i) => {
    a.models?.forEach((m, j) => {
      if (!models.has(m)) ctx.addIssue({ code: 'custom', path: ['assertions', i, 'models', j], message: `names no backend or shadow ("${m}"; defined: ${[...models].join(', ')})` })
    })
    if (names.has(a.name)) ctx.addIssue({ code: 'custom', path: ['assertions', i, 'name'], message: `duplicate assertion name "${a.name}"` })
    names.add(a.name)
    if (a.rule.schema !== undefined) {
      const err = compileSchemaRule(a.rule.schema).error
      if (err !== null) ctx.addIssue({ code: 'custom', path: ['assertions', i, 'rule', 'schema'], message: `is not a valid JSON Schema (${err})` })
    }
  })
}

/** Why this config's drift cannot run with its `workers`, or null. Also checked after `--workers N`. */
export function driftWorkersProblem (cfg: { drift?: DriftConfig | undefined, workers: number }): string | null {
  if (cfg.drift === undefined || !cfg.drift.enabled || cfg.workers <= 1) return null
  return `cannot run with ${cfg.workers} workers: each worker keeps its own window and reference bins, and their PSI cannot be merged; run drift with workers: 1 (or set drift.enabled: false)`
}
