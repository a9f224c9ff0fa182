import { z } from 'zod'
import type { FeedbackResult } from './feedback-metrics.js'

// The input side of `POST /feedback`: the body (JSON, array, NDJSON), one label's schema, and
// the merge of several processes' answers (`--workers`). No state here.

/** Most labels one `POST /feedback` may carry (more is 413). */
export const MAX_FEEDBACK = 10_000

const SOURCES = ['user', 'annotator', 'outcome'] as const
export type FeedbackSource = (typeof SOURCES)[number]

const itemSchema = z.strictObject({
  requestId: z.string().min(1, 'must be a non-empty string').max(256, 'must be at most 256 characters'),
  instance: z.number().int('must be a whole number >= 0').min(0, 'must be a whole number >= 0').default(0),
  label: z.union([z.string().min(1).max(2048), z.number().refine(Number.isFinite), z.boolean()], 'must be a string, a number or a boolean').optional(),
  value: z.number('must be a number').refine(Number.isFinite, 'must be a finite number').optional(),
  source: z.enum(SOURCES, 'must be user, annotator or outcome').default('user'),
  at: z.union([z.string(), z.number()]).refine((v) => !Number.isNaN(new Date(v).getTime()), 'must be an ISO 8601 time or epoch milliseconds').optional()
}).refine((e) => (e.label === undefined) !== (e.value === undefined), 'needs exactly one of label (classification, text) and value (regression)')

/** One validated label. */
export type FeedbackItem = z.output<typeof itemSchema>

/** A raw item as a label, or why it is invalid (the message names the field, or the NDJSON line). */
export function parseItem (raw: unknown): { item: FeedbackItem, message: null } | { item: null, message: string } {
  const line = malformedLine(raw)
  if (line !== null) return { item: null, message: `line ${line}: not valid JSON` }
  const parsed = itemSchema.safeParse(raw)
  return parsed.success ? { item: parsed.data, message: null } : { item: null, message: issueMessage(parsed.error.issues[0]!) }
}

/** One item's outcome in the response of `POST /feedback`. */
export interface ItemResult {
  index: number
  result: FeedbackResult
  /** A changed label of the same (requestId, instance, source): the old one was replaced. */
  replaced?: boolean
  message?: string
}

/** The response of `POST /feedback`. */
export interface IngestResponse {
  counts: Record<FeedbackResult, number>
  results: ItemResult[]
}

function issueMessage (i: z.core.$ZodIssue): string {
  if (i.code === 'unrecognized_keys') return `${i.keys.join(', ')}: unknown key (requestId, instance, label, value, source, at)`
  if (i.code === 'invalid_type' && i.path.length === 0) return 'item: must be a JSON object'
  return `${i.path.length > 0 ? i.path.join('.') : 'item'}: ${i.message}`
}

/** Marks an NDJSON line that is not JSON (a plain object: it crosses the `--workers` IPC). */
const MALFORMED = '__penumbraMalformedLine'

/**
 * A `POST /feedback` body: one JSON object, a JSON array, or (`ndjson`) one object per line. A
 * line that is not JSON becomes an item reported `invalid` at its index; the other lines count.
 * Null when a JSON body is not JSON at all.
 */
export function parseFeedbackBody (text: string, ndjson: boolean): unknown[] | null {
  if (ndjson) {
    const out: unknown[] = []
    let line = 0
    for (const l of text.split('\n')) {
      line++
      if (l.trim() === '') continue
      try {
        out.push(JSON.parse(l))
      } catch {
        out.push({ [MALFORMED]: line })
      }
    }
    return out
  }
  let doc: unknown
  try { doc = JSON.parse(text) } catch { return null }
  return Array.isArray(doc) ? doc : [doc]
}

function malformedLine (r: unknown): number | null {
  if (typeof r !== 'object' || r === null || !(MALFORMED in r)) return null
  return Number((r as Record<string, unknown>)[MALFORMED])
}

/** Which result wins when several processes answered the same item (`--workers`, memory store). */
const PRECEDENCE: Record<FeedbackResult, number> = { joined: 4, duplicate: 3, invalid: 2, expired: 1, unknown: 0 }

/**
 * Merges the answers of several processes to one batch, item by item: the process that holds
 * the prediction answers for it (joined, duplicate, invalid), the others only know it as
 * expired or unknown.
 */
export function mergeIngest (answers: readonly IngestResponse[]): IngestResponse {
  const first = answers[0]
  if (first === undefined) return { counts: { joined: 0, unknown: 0, expired: 0, duplicate: 0, invalid: 0 }, results: [] }
  const results = first.results.map((r, i) => {
    let best = r
    for (const a of answers) {
      const o = a.results[i]
      if (o !== undefined && PRECEDENCE[o.result] > PRECEDENCE[best.result]) best = o
    }
    return best
  })
  const counts: Record<FeedbackResult, number> = { joined: 0, unknown: 0, expired: 0, duplicate: 0, invalid: 0 }
  for (const r of results) counts[r.result]++
  return { counts, results }
}
