import { LatencyHistogram } from '../../stats/latency-histogram.js'
import { wilson } from '../../analysis/wilson.js'
import { LLM_KINDS, type LlmComparison, type LlmKind, type KindCount } from './agreement.js'
import type { StreamStats } from './stream-timing.js'

/** Token sums of one side over the compared answers. */
interface SideTokens {
  input: number
  output: number
  /** Answers that reported no usage (never estimated). */
  unknown: number
}

/** The LLM part of a shadow report's numbers, as sent between cluster workers and the primary. */
export interface LlmReportData {
  kinds: Record<LlmKind, KindCount>
  /** Time to first token on the mirrored requests where both streams were measured. */
  primaryTtft: number[]
  shadowTtft: number[]
  /** Compared answers (the token averages' denominator), and the sums per side. */
  answers: number
  primaryTokens: SideTokens
  shadowTokens: SideTokens
}

/** The LLM settings of the shadow the report shows (a subset of ShadowLlmView). */
interface LlmSettings { stream: 'keep' | 'off' }

const sideTokens = (): SideTokens => ({ input: 0, output: 0, unknown: 0 })

/**
 * What `GET /report` says about a shadow's LLM answers (issue #16): each agreement kind with
 * its Wilson interval, and the shadow's time to first token and tokens per answer next to the
 * primary's, on the same mirrored requests.
 */
export class LlmReport {
  readonly kinds = Object.fromEntries(LLM_KINDS.map((k) => [k, { agree: 0, disagree: 0 }])) as Record<LlmKind, KindCount>
  readonly primaryTtft = new LatencyHistogram()
  readonly shadowTtft = new LatencyHistogram()
  answers = 0
  readonly primaryTokens = sideTokens()
  readonly shadowTokens = sideTokens()

  /** One compared LLM answer pair: its kinds and both sides' usage. */
  recordComparison (llm: LlmComparison): void {
    for (const kind of LLM_KINDS) {
      const c = llm.kinds[kind]
      if (c === undefined) continue
      this.kinds[kind].agree += c.agree
      this.kinds[kind].disagree += c.disagree
    }
    this.answers++
    addUsage(this.primaryTokens, llm.primary.usage)
    addUsage(this.shadowTokens, llm.shadow.usage)
  }

  /** Both streams of one mirrored request were timed: their times to first token, side by side. */
  recordTiming (primary: StreamStats, shadow: StreamStats): void {
    if (primary.timeToFirstTokenMs === null || shadow.timeToFirstTokenMs === null) return
    this.primaryTtft.observe(primary.timeToFirstTokenMs)
    this.shadowTtft.observe(shadow.timeToFirstTokenMs)
  }

  /** Nothing LLM-shaped was seen (the report then leaves the section out). */
  get empty (): boolean {
    return this.answers === 0 && this.primaryTtft.count === 0
  }

  data (): LlmReportData {
    return {
      kinds: structuredClone(this.kinds),
      primaryTtft: this.primaryTtft.toJSON(),
      shadowTtft: this.shadowTtft.toJSON(),
      answers: this.answers,
      primaryTokens: { ...this.primaryTokens },
      shadowTokens: { ...this.shadowTokens }
    }
  }

  absorb (d: LlmReportData): void {
    for (const kind of LLM_KINDS) {
      const c = d.kinds[kind]
      if (c === undefined) continue
      this.kinds[kind].agree += c.agree
      this.kinds[kind].disagree += c.disagree
    }
    this.primaryTtft.merge(d.primaryTtft)
    this.shadowTtft.merge(d.shadowTtft)
    this.answers += d.answers
    for (const k of ['input', 'output', 'unknown'] as const) {
      this.primaryTokens[k] += d.primaryTokens[k]
      this.shadowTokens[k] += d.shadowTokens[k]
    }
  }

  /** The `llm` section of a shadow in `GET /report`. */
  toJSON (settings: LlmSettings | undefined): Record<string, unknown> {
    const kinds: Record<string, unknown> = {}
    for (const kind of LLM_KINDS) {
      const c = this.kinds[kind]
      const n = c.agree + c.disagree
      if (n === 0) continue
      // The disagreement rate, with the same 95 % Wilson interval as the request disagreement.
      kinds[kind] = { agree: c.agree, disagree: c.disagree, compared: n, ...wilson(c.disagree, n), interval: 'wilson95' }
    }
    const q = (h: LatencyHistogram, p: number): number | null => {
      const v = h.quantile(p)
      return v === null ? null : Math.round(v * 1000) / 1000
    }
    const off = settings?.stream === 'off'
    const perAnswer = (t: SideTokens): Record<string, unknown> => {
      const known = this.answers - t.unknown
      return {
        input: known > 0 ? round1(t.input / known) : null,
        output: known > 0 ? round1(t.output / known) : null,
        answersWithoutUsage: t.unknown
      }
    }
    return {
      agreement: kinds,
      timeToFirstTokenMs: {
        samples: this.primaryTtft.count,
        primary: { p50: q(this.primaryTtft, 0.5), p99: q(this.primaryTtft, 0.99) },
        shadow: { p50: q(this.shadowTtft, 0.5), p99: q(this.shadowTtft, 0.99) },
        note: off
          ? 'not measured for this shadow: shadows[].llm.stream is off (its copies are not streamed)'
          : this.primaryTtft.count === 0 ? 'no mirrored request with both answers streamed yet' : null
      },
      tokensPerAnswer: {
        answers: this.answers,
        primary: perAnswer(this.primaryTokens),
        shadow: perAnswer(this.shadowTokens)
      }
    }
  }
}

function addUsage (t: SideTokens, u: LlmComparison['primary']['usage']): void {
  if (u === null || (u.input_tokens === null && u.output_tokens === null)) { t.unknown++; return }
  t.input += u.input_tokens ?? 0
  t.output += u.output_tokens ?? 0
}

const round1 = (x: number): number => Math.round(x * 10) / 10
