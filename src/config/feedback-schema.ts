import { z } from 'zod'

// `feedback` (issue #19): the prediction log that late labels are joined to, and the online
// quality computed from them. Its own file so the section is one line in schema.ts.

const rate = z.number().min(0, 'must be within 0..1').max(1, 'must be within 0..1')

/** A per-route sample rate: the first route whose method and path match decides. */
const feedbackRoute = z.strictObject({
  methods: z.array(z.string().regex(/^[A-Z]+$/, 'must be an upper-case HTTP method')).min(1).default(['POST']),
  paths: z.array(z.string().min(1).startsWith('/', 'must start with /')).min(1),
  sampleRate: rate
})

/** A Redis URL (`redis://` or `rediss://`); credentials may be part of it (it is redacted in GET /config). */
const redisUrl = z.string().superRefine((value, ctx) => {
  let u: URL
  try {
    u = new URL(value)
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a redis:// or rediss:// URL' })
    return
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') ctx.addIssue({ code: 'custom', message: 'must be a redis:// or rediss:// URL' })
})

export const feedbackSchema = z.strictObject({
  /**
   * Share of the requests a shadow or an experiment touches whose predictions are logged for
   * joining labels (requests nothing experimental touches are never logged).
   */
  sampleRate: rate.default(1),
  routes: z.array(feedbackRoute).default([]),
  store: z.enum(['memory', 'redis']).default('memory'),
  /** How long a prediction waits for its label. */
  ttlMs: z.number().int().min(1000, 'must be a whole number of milliseconds >= 1000').default(24 * 60 * 60 * 1000),
  /** memory store: the most bytes of extracted predictions held (oldest evicted first). */
  maxBytes: z.number().int().min(1024, 'must be >= 1024').default(64 * 1024 * 1024),
  redis: z.strictObject({
    url: redisUrl.default('redis://127.0.0.1:6379'),
    /** Prefix of every key penumbra writes. */
    keyPrefix: z.string().max(64).default('penumbra:fb:'),
    /** A command that takes longer fails (counted): Redis never holds anything up for long. */
    commandTimeoutMs: z.number().int().min(1).default(200)
  }).prefault({}),
  /** The report warns when fewer than this share of the logged predictions got a label. */
  minCoverage: rate.default(0.01),
  /** Class labels counted per class in metrics; empty: the first 20 seen, the rest as `other`. */
  classes: z.array(z.string().min(1)).max(100).default([]),
  /** Confidence level of the intervals; the paired test's alpha is 1 - this. */
  confidence: z.number().gt(0.5, 'must be within (0.5, 1)').lt(1, 'must be within (0.5, 1)').default(0.95)
})

export type FeedbackConfig = z.output<typeof feedbackSchema>
