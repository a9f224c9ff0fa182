import { z } from 'zod'

// The `canary:` section (issue #18): a ramp of the candidate's share of traffic that advances,
// holds, rolls back or promotes by itself on gates decided from intervals (src/rollout/).
// Cross-key checks (backends exist, candidate ≠ baseline) are in checkCanary, called from the
// main schema's superRefine where the backends are known.

const backendName = z.string().regex(/^[a-z0-9_-]{1,32}$/, 'must match [a-z0-9_-]{1,32}')
const share = (what: string): z.ZodNumber => z.number(`must be a number ${what}`)

const unit = z.string().regex(/^(random|(header|cookie|query):[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/,
  'must be random, header:<name>, cookie:<name> or query:<name>')

const gates = z.strictObject({
  /** Candidate − baseline share of 5xx and upstream errors; fail when the interval lies above it. */
  errorRate: z.strictObject({
    maxIncrease: share('within [0, 1)').min(0, 'must be within [0, 1)').lt(1, 'must be within [0, 1)')
  }).optional(),
  /** Candidate / baseline latency quantile; fail when the interval lies above the ratio. */
  latency: z.strictObject({
    p99Ratio: share('>= 1').min(1, 'must be >= 1 (the candidate may be at most this many times slower; below 1 even an identical candidate could never pass)').optional(),
    p50Ratio: share('>= 1').min(1, 'must be >= 1 (the candidate may be at most this many times slower; below 1 even an identical candidate could never pass)').optional()
  }).refine((l) => l.p99Ratio !== undefined || l.p50Ratio !== undefined, 'give p99Ratio and/or p50Ratio').optional(),
  /** Share of compared predictions on which candidate and baseline differ. */
  disagreement: z.strictObject({
    max: share('within (0, 1)').gt(0, 'must be within (0, 1) (0 can never pass: an interval never lies below 0)').lt(1, 'must be within (0, 1)')
  }).optional(),
  /** Baseline − candidate online accuracy (ground truth from the feedback capability). */
  accuracy: z.strictObject({
    maxDrop: share('within [0, 1)').min(0, 'must be within [0, 1)').lt(1, 'must be within [0, 1)')
  }).optional()
})

export const canarySchema = z.strictObject({
  /** The backend being released. */
  candidate: backendName,
  /** What it is compared to and what serves the rest of the traffic; null: the active primary (at start). */
  baseline: backendName.nullable().default(null),
  /** random, or header:/cookie:/query: for sticky units (a unit on the candidate at weight w stays there at every w' > w). */
  unit: unit.default('random'),
  /** The requests the canary splits (the rest go to the primary, uncounted). */
  match: z.strictObject({
    methods: z.array(z.string().regex(/^[A-Z]+$/, 'must be an upper-case HTTP method')).min(1).default(['POST']),
    paths: z.array(z.string().min(1).startsWith('/', 'must start with /')).default(['/**'])
  }).prefault({}),
  /** Mirror baseline-served requests to the candidate before any client sees it; null: skip the phase. */
  shadowFirst: z.strictObject({
    sampleRate: share('within (0, 1]').gt(0, 'must be within (0, 1]').max(1, 'must be within (0, 1]').default(1),
    minComparisons: z.number().int().min(1, 'must be >= 1').default(500)
  }).nullable().default(null),
  /** During the ramp: share of baseline-served requests also mirrored to the candidate (candidate-served ones are all mirrored to the baseline). */
  mirrorSampleRate: share('within [0, 1]').min(0, 'must be within [0, 1]').max(1, 'must be within [0, 1]').default(1),
  /** Percent of the split traffic on the candidate, one per step, strictly increasing, within (0, 100]. */
  steps: z.array(share('within (0, 100]').gt(0, 'must be within (0, 100]').max(100, 'must be within (0, 100]')).min(1, 'needs at least one step')
    .default([1, 5, 25, 50, 100])
    .superRefine((s, ctx) => {
      for (let i = 1; i < s.length; i++) {
        if (!(s[i]! > s[i - 1]!)) ctx.addIssue({ code: 'custom', path: [i], message: `must be above the previous step (${s[i - 1]}): steps must strictly increase` })
      }
    }),
  intervalMs: z.number().int().min(10, 'must be a whole number of milliseconds >= 10').default(60_000),
  /** Requests per arm per step (and comparisons) before a gate can pass or fail. */
  minRequests: z.number().int().min(1, 'must be >= 1').default(200),
  /** Inconclusive analyses allowed per step; then `onMaxHolds`. */
  maxHolds: z.number().int().min(1, 'must be >= 1').default(5),
  onMaxHolds: z.enum(['fail', 'pause']).default('fail'),
  /** Error rate of the gates' intervals (always-valid: every look may decide). */
  alpha: share('within (0, 0.5]').gt(0, 'must be within (0, 0.5]').max(0.5, 'must be within (0, 0.5]').default(0.05),
  gates: gates.default({ errorRate: { maxIncrease: 0.01 } }).refine((g) => Object.values(g).some((v) => v !== undefined), 'needs at least one gate (errorRate, latency, disagreement, accuracy)'),
  onSuccess: z.enum(['promote', 'hold']).default('promote'),
  autoStart: z.boolean().default(false),
  /** internal: this process decides; external: `penumbra canary` decides and sets the weight (PUT /canary/weight). */
  controller: z.enum(['internal', 'external']).default('internal'),
  /** Deadline of one mirrored call (the canary's comparison traffic). */
  mirrorTimeoutMs: z.number().int().min(1, 'must be a whole number of milliseconds >= 1').default(5000)
})

export type CanaryConfig = z.output<typeof canarySchema>

/**
 * Cross-key checks: candidate and baseline name backends and differ; without a baseline the
 * candidate must not be the primary (it would be compared with itself).
 */
export function checkCanary (c: CanaryConfig | null, backends: Record<string, unknown>, primary: string, ctx: z.RefinementCtx): void {
  if (c === null) return
  const defined = Object.keys(backends).join(', ') || 'none'
  if (!(c.candidate in backends)) ctx.addIssue({ code: 'custom', path: ['canary', 'candidate'], message: `names no backend ("${c.candidate}"; defined: ${defined})` })
  if (c.baseline !== null && !(c.baseline in backends)) ctx.addIssue({ code: 'custom', path: ['canary', 'baseline'], message: `names no backend ("${c.baseline}"; defined: ${defined})` })
  const baseline = c.baseline ?? primary
  if (baseline === c.candidate) ctx.addIssue({ code: 'custom', path: ['canary', c.baseline === null ? 'candidate' : 'baseline'], message: `the candidate and the baseline are both "${c.candidate}": a canary compares two different backends` })
}
