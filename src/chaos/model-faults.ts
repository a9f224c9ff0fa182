import { createRequire } from 'node:module'
import type normalT from '@stdlib/random-base-normal'
import type { FaultSpec } from '../config/chaos-schema.js'
import { argmax, roleOf, ROLE_LABEL, SCORE_KEY } from '../compare/instance.js'
import { isObject, type JsonObject } from '../compare/formats/format.js'
import { parsePointer, WILDCARD } from '../compare/json-pointer.js'

const require = createRequire(import.meta.url)
let normal: typeof normalT | null = null

/** A draw of N(mean, sd) (@stdlib, loaded on first use). */
export function gaussian (mean: number, sd: number): number {
  normal ??= require('@stdlib/random-base-normal') as typeof normalT
  return sd === 0 ? mean : normal(mean, sd)
}

/** A model fault (the kinds that change an answer's content). */
export type ModelFault = Extract<FaultSpec, { kind: 'flip_label' | 'score_noise' | 'bias' | 'stale' | 'drop_field' | 'truncate_text' }>

/** Answers kept per experiment for `stale`. */
const STALE_KEEP = 16
/** Classes learned per experiment (labels are model output: bounded). */
const MAX_CLASSES = 1000

/**
 * What an experiment's model faults remember across answers: the classes seen (so `flip_label`
 * and `bias` can name another class when an answer carries only its own label), which label each
 * score index stood for, and the last answers (for `stale`).
 */
export class ModelFaultState {
  readonly labels = new Set<string>()
  readonly ints = new Set<number>()
  readonly labelOfIndex = new Map<number, string>()
  readonly indexOfLabel = new Map<string, number>()
  readonly #answers: string[] = []

  /** Records an answer (its JSON text); returns one recorded for an earlier request, if any. */
  swapStale (text: string): string | null {
    const prev = this.#answers.length === 0 ? null : this.#answers[Math.floor(Math.random() * this.#answers.length)]!
    this.#answers.push(text)
    if (this.#answers.length > STALE_KEEP) this.#answers.shift()
    return prev
  }

  learn (label: unknown, scores: number[] | null): void {
    if (typeof label === 'string' && this.labels.size < MAX_CLASSES) {
      this.labels.add(label)
      if (scores !== null && scores.length > 0) {
        const i = argmax(scores)
        this.labelOfIndex.set(i, label)
        this.indexOfLabel.set(label, i)
      }
    } else if (typeof label === 'number' && Number.isInteger(label) && this.ints.size < MAX_CLASSES) {
      this.ints.add(label)
    }
  }
}

/** One prediction: where it lives and its parts (a label, a score vector, or both). */
interface Instance {
  /** The object holding the label (null: the instance is a bare label). */
  holder: JsonObject | unknown[]
  labelKey: string | number | null
  scores: number[] | null
}

/**
 * Applies the model faults to a parsed JSON answer, in place (stale replaces it first).
 * Returns the document and the kinds that changed something. The result stays valid for its
 * format: labels stay labels of the model's classes, scores stay a distribution when they were one.
 */
export function applyModelFaults (doc: unknown, faults: readonly ModelFault[], state: ModelFaultState, text: string): { doc: unknown, applied: string[] } {
  const applied: string[] = []
  const instances = findInstances(doc)
  for (const inst of instances) state.learn(inst.labelKey === null ? null : (inst.holder as Record<string | number, unknown>)[inst.labelKey], inst.scores)
  for (const f of faults) {
    switch (f.kind) {
      case 'stale': {
        const prev = state.swapStale(text)
        if (prev !== null && prev !== text) { doc = JSON.parse(prev); applied.push('stale') }
        break
      }
      case 'flip_label':
        if (flip(findInstances(doc), f.p, state)) applied.push('flip_label')
        break
      case 'score_noise':
        if (noise(findInstances(doc), f.sigma, state)) applied.push('score_noise')
        break
      case 'bias':
        if (bias(findInstances(doc), f.toward, f.strength, state)) applied.push('bias')
        break
      case 'drop_field':
        if (dropPointer(doc, parsePointer(f.pointer))) applied.push('drop_field')
        break
      case 'truncate_text':
        if (truncateLlm(doc, f.tokens)) applied.push('truncate_text')
        break
    }
  }
  return { doc, applied }
}

// --- finding predictions ----------------------------------------------------------------------------

function numericArray (v: unknown): v is number[] {
  if (!Array.isArray(v) || v.length < 2) return false
  for (const x of v) if (typeof x !== 'number' || !Number.isFinite(x)) return false
  return true
}

/** Predictions of KServe v1 / TF Serving / MLflow (`predictions`, `outputs` lists), OIP v2 BYTES tensors, or a top-level list. */
function findInstances (doc: unknown): Instance[] {
  const out: Instance[] = []
  let list: unknown[] | null = null
  if (Array.isArray(doc)) list = doc
  else if (isObject(doc)) {
    if (Array.isArray(doc.predictions)) list = doc.predictions
    else if (Array.isArray(doc.outputs)) {
      const tensors = doc.outputs.filter((t): t is JsonObject => isObject(t) && Array.isArray(t.data))
      if (tensors.length > 0 && tensors.length === doc.outputs.length) {
        for (const t of tensors) collectTensor(t, out)
        return out
      }
      list = doc.outputs
    } else if (objectInstance(doc, out)) return out
  }
  if (list === null) return out
  for (let i = 0; i < list.length; i++) {
    const v = list[i]
    if (typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v))) out.push({ holder: list, labelKey: i, scores: null })
    else if (numericArray(v)) out.push({ holder: list, labelKey: null, scores: v })
    else if (isObject(v)) objectInstance(v, out)
  }
  return out
}

function objectInstance (o: JsonObject, out: Instance[]): boolean {
  let labelKey: string | null = null
  let scores: number[] | null = null
  for (const k in o) {
    const v = o[k]
    if (labelKey === null && roleOf(k) === ROLE_LABEL && (typeof v === 'string' || typeof v === 'number')) labelKey = k
    else if (scores === null && SCORE_KEY.test(k) && numericArray(v)) scores = v
  }
  if (labelKey === null && scores === null) return false
  out.push({ holder: o, labelKey, scores })
  return true
}

/** OIP v2: a BYTES tensor is one label per row; a numeric [n, k] tensor is n score rows. */
function collectTensor (t: JsonObject, out: Instance[]): void {
  const data = t.data as unknown[]
  const shape = Array.isArray(t.shape) ? t.shape as number[] : [data.length]
  if (data.every((v) => typeof v === 'string')) {
    for (let i = 0; i < data.length; i++) out.push({ holder: data, labelKey: i, scores: null })
    return
  }
  const k = shape.length === 2 ? shape[1]! : 0
  if (k < 2 || !data.every((v) => typeof v === 'number') || data.length % k !== 0) return
  for (let r = 0; r < data.length / k; r++) out.push({ holder: data, labelKey: null, scores: rowView(data as number[], r * k, k) })
}

/** A row of a flat tensor, read and written in place through index access. */
function rowView (data: number[], start: number, length: number): number[] {
  return new Proxy(data.slice(start, start + length), {
    set (row, prop, value) {
      (row as unknown as Record<string | symbol, unknown>)[prop] = value
      const i = typeof prop === 'string' ? Number(prop) : NaN
      if (Number.isInteger(i) && i >= 0 && i < length) data[start + i] = value as number
      return true
    }
  })
}

// --- the faults ---------------------------------------------------------------------------------------

function labelOf (inst: Instance): unknown {
  return inst.labelKey === null ? undefined : (inst.holder as Record<string | number, unknown>)[inst.labelKey]
}

function setLabel (inst: Instance, v: unknown): void {
  if (inst.labelKey !== null) (inst.holder as Record<string | number, unknown>)[inst.labelKey] = v
}

/** The label that goes with score index `i`, when the experiment has seen it. */
function relabel (inst: Instance, state: ModelFaultState): void {
  if (inst.scores === null || inst.labelKey === null) return
  const cur = labelOf(inst)
  if (typeof cur !== 'string') return
  const l = state.labelOfIndex.get(argmax(inst.scores))
  if (l !== undefined) setLabel(inst, l)
}

function pickOther<T> (set: Set<T>, not: T): T | undefined {
  const others = [...set].filter((x) => x !== not)
  return others.length === 0 ? undefined : others[Math.floor(Math.random() * others.length)]
}

function round6 (x: number): number {
  return Math.round(x * 1e6) / 1e6
}

/** Moves each instance, with probability p, to another class: swaps the top score with another's and relabels. */
function flip (instances: Instance[], p: number, state: ModelFaultState): boolean {
  let changed = false
  for (const inst of instances) {
    if (Math.random() >= p) continue
    const s = inst.scores
    if (s !== null) {
      const top = argmax(s)
      // Another class, one whose label the experiment has seen when there is one (so the label
      // stays the label of the top score).
      const others: number[] = []
      for (let k = 0; k < s.length; k++) if (k !== top) others.push(k)
      const named = typeof labelOf(inst) === 'string' ? others.filter((k) => state.labelOfIndex.has(k)) : []
      const pool = named.length > 0 ? named : others
      const j = pool[Math.floor(Math.random() * pool.length)]!
      const t = s[top]!
      s[top] = s[j]!
      s[j] = t
      // Equal scores would leave the argmax where it was: nudge the new top above the rest.
      if (argmax(s) !== j) s[j] = s[top]! + 1e-6
      const label = labelOf(inst)
      if (typeof label === 'string') setLabel(inst, state.labelOfIndex.get(j) ?? pickOther(state.labels, label) ?? label)
      else if (typeof label === 'number') setLabel(inst, j)
      changed = true
      continue
    }
    const label = labelOf(inst)
    const other = typeof label === 'string' ? pickOther(state.labels, label) : typeof label === 'number' ? (pickOther(state.ints, label) ?? (label === 0 ? 1 : 0)) : undefined
    if (other !== undefined) { setLabel(inst, other); changed = true }
  }
  return changed
}

function isDistribution (s: readonly number[]): boolean {
  let sum = 0
  for (const x of s) { if (x < 0 || x > 1) return false; sum += x }
  return Math.abs(sum - 1) < 1e-3
}

/** Adds N(0, σ) to every score; a distribution stays one (clipped at 0, renormalised). */
function noise (instances: Instance[], sigma: number, state: ModelFaultState): boolean {
  let changed = false
  for (const inst of instances) {
    const s = inst.scores
    if (s === null) continue
    const dist = isDistribution(s)
    for (let i = 0; i < s.length; i++) s[i] = s[i]! + gaussian(0, sigma)
    if (dist) {
      let sum = 0
      for (let i = 0; i < s.length; i++) { s[i] = Math.max(s[i]!, 1e-9); sum += s[i]! }
      for (let i = 0; i < s.length; i++) s[i] = round6(s[i]! / sum)
    }
    relabel(inst, state)
    changed = true
  }
  return changed
}

/** Moves `strength` of every other class's probability mass to the class `toward`. */
function bias (instances: Instance[], toward: number | string, strength: number, state: ModelFaultState): boolean {
  let changed = false
  for (const inst of instances) {
    const s = inst.scores
    const c = typeof toward === 'number' ? toward : state.indexOfLabel.get(toward)
    if (s !== null && c !== undefined && c < s.length) {
      let moved = 0
      for (let i = 0; i < s.length; i++) {
        if (i === c) continue
        const m = s[i]! * strength
        s[i] = round6(s[i]! - m)
        moved += m
      }
      s[c] = round6(s[c]! + moved)
      const label = labelOf(inst)
      if (typeof label === 'string') setLabel(inst, state.labelOfIndex.get(argmax(s)) ?? (argmax(s) === c && typeof toward === 'string' ? toward : label))
      else if (typeof label === 'number') setLabel(inst, argmax(s))
      changed = true
      continue
    }
    // A label-only answer: the label moves to the class with probability `strength`.
    const label = labelOf(inst)
    if (s === null && label !== undefined && typeof label === typeof toward && label !== toward && Math.random() < strength) {
      setLabel(inst, toward)
      changed = true
    }
  }
  return changed
}

/** Removes the field(s) at a pointer (`*` matches every index or key). */
function dropPointer (doc: unknown, segs: readonly string[]): boolean {
  if (segs.length === 0) return false
  const [head, ...rest] = segs as [string, ...string[]]
  if (Array.isArray(doc)) {
    const idx = head === WILDCARD ? doc.map((_, i) => i) : /^(0|[1-9][0-9]*)$/.test(head) ? [Number(head)] : []
    let changed = false
    // Back to front, so removing an element does not shift the ones still to visit.
    for (const i of idx.reverse()) {
      if (i >= doc.length) continue
      if (rest.length === 0) { doc.splice(i, 1); changed = true } else changed = dropPointer(doc[i], rest) || changed
    }
    return changed
  }
  if (!isObject(doc)) return false
  const keys = head === WILDCARD ? Object.keys(doc) : Object.hasOwn(doc, head) ? [head] : []
  let changed = false
  for (const k of keys) {
    if (rest.length === 0) { Reflect.deleteProperty(doc, k); changed = true } else changed = dropPointer(doc[k], rest) || changed
  }
  return changed
}

/** The first `n` tokens of a text (whitespace-delimited words with their separators). */
export function firstTokens (text: string, n: number): string {
  if (n === 0) return ''
  const re = /\S+/g
  let m: RegExpExecArray | null
  let count = 0
  while ((m = re.exec(text)) !== null) {
    if (++count === n) return text.slice(0, m.index + m[0].length)
  }
  return text
}

/**
 * Cuts the generated text of an OpenAI-style answer (chat `message.content`, completions `text`,
 * responses `output[].content[].text`) to n tokens; a cut answer says so (`finish_reason: length`,
 * `status: incomplete`), as a model that hit its token limit would.
 */
function truncateLlm (doc: unknown, n: number): boolean {
  if (!isObject(doc)) return false
  let changed = false
  const cut = (holder: JsonObject, key: string): boolean => {
    const t = holder[key]
    if (typeof t !== 'string') return false
    const short = firstTokens(t, n)
    if (short === t) return false
    holder[key] = short
    return true
  }
  if (Array.isArray(doc.choices)) {
    for (const c of doc.choices) {
      if (!isObject(c)) continue
      const hit = (isObject(c.message) && cut(c.message, 'content')) || cut(c, 'text')
      if (hit) { changed = true; if ('finish_reason' in c) c.finish_reason = 'length' }
    }
  }
  if (Array.isArray(doc.output)) {
    for (const item of doc.output) {
      if (!isObject(item) || !Array.isArray(item.content)) continue
      for (const part of item.content) if (isObject(part) && cut(part, 'text')) changed = true
    }
    if (changed && typeof doc.status === 'string') {
      doc.status = 'incomplete'
      doc.incomplete_details = { reason: 'max_output_tokens' }
    }
    if (typeof doc.output_text === 'string') cut(doc, 'output_text')
  }
  return changed
}
