import { parsePointer } from '../compare/json-pointer.js'
import { redactValue, type RedactionPatterns } from '../compare/redact.js'
import { extractPredictions, instancesOf, topScoreOf } from './extract-prediction.js'

/**
 * What drift and assertions need of one parsed answer, without the body: per instance its label
 * and top score, and per assertion path the value in each instance (from the body as answered,
 * for the checks, and from the redacted body, for storage). Small and structured-clone safe, so
 * the comparison thread can send it back instead of a large body.
 */
export interface AnswerDigest {
  format: string
  predictions: Array<{ label?: string, score?: number }>
  /** `values[a][i]`: the value at assertion a's path in instance i (undefined: absent). */
  values: unknown[][]
  /** The same from the body after `redact.paths`; absent when redaction changed nothing. */
  redacted?: unknown[][]
}

/** The settings a digest is made with: the assertion paths (config order) and the redactions. */
export interface DigestSpec {
  drift: boolean
  paths: ReadonlyArray<readonly string[]>
  redact: RedactionPatterns
}

/** Compiles the spec from config values (here and in the comparison thread). */
export function digestSpec (drift: boolean, paths: readonly string[], redact: readonly string[]): DigestSpec {
  return { drift, paths: paths.map(parsePointer), redact: redact.map(parsePointer) }
}

/** Digests one answer (see {@link AnswerDigest}). */
export function digestAnswer (format: string, body: unknown, spec: DigestSpec): AnswerDigest {
  const predictions = spec.drift ? extractPredictions(format, body).map((p) => ({ label: p.label, score: topScoreOf(p) })) : []
  if (spec.paths.length === 0) return { format, predictions, values: [] }
  const values = valuesOf(instancesOf(format, body), spec.paths)
  const d: AnswerDigest = { format, predictions, values }
  if (spec.redact.length > 0) {
    const r = redactValue(body, spec.redact)
    if (r !== body) d.redacted = valuesOf(instancesOf(format, r), spec.paths)
  }
  return d
}

function valuesOf (instances: unknown[], paths: ReadonlyArray<readonly string[]>): unknown[][] {
  return paths.map((segs) => instances.map((inst) => at(inst, segs)))
}

/** The value at a pointer (no wildcards); undefined when absent. */
export function at (v: unknown, segs: readonly string[]): unknown {
  let cur = v
  for (const seg of segs) {
    if (typeof cur !== 'object' || cur === null) return undefined
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9][0-9]*)$/.test(seg)) return undefined
      cur = cur[Number(seg)]
    } else {
      if (!Object.hasOwn(cur, seg)) return undefined
      cur = (cur as Record<string, unknown>)[seg]
    }
  }
  return cur
}
