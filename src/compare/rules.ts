import { parsePointer, WILDCARD } from './json-pointer.js'

/** How the elements of an array are paired for comparison. */
export type ArrayMode = 'ordered' | 'unordered' | { keyBy: string }

/** One rule for the values at a pattern pointer (and, for the inheritable settings, below it). */
export interface PathRuleSpec {
  /** Pattern pointer; `*` matches any array index or key. */
  pattern: string
  /** Skip the value and its whole subtree. */
  ignore?: boolean
  absTol?: number
  relTol?: number
  arrays?: ArrayMode
  /** Compare strings by normalised similarity (`compare.textSimilarity`) instead of exactly. */
  text?: boolean
}

/**
 * The settings in force at a point of the walk. Tolerances, array mode and text mode are
 * inherited by the subtree below the rule that set them, until a deeper rule overrides them.
 * Objects of this type are shared and never mutated.
 */
export interface Settings {
  readonly absTol: number
  readonly relTol: number
  readonly arrays: ArrayMode
  readonly text: boolean
}

/** The rule fields set at one trie node (merged from every spec with the same pattern, later wins). */
interface NodeRule {
  ignore?: boolean
  absTol?: number
  relTol?: number
  arrays?: ArrayMode
  text?: boolean
  /** Literal (non-`*`) segments in the pattern: the more, the more specific. */
  specificity: number
  /** Position of the last spec that contributed: breaks specificity ties (later wins). */
  order: number
}

class RuleNode {
  readonly children = new Map<string, RuleNode>()
  wildcard: RuleNode | null = null
  rule: NodeRule | null = null
  /** This node as a one-element cursor, so that the common descent allocates nothing. */
  readonly self: readonly RuleNode[] = [this]
  /** One-entry memo of `apply(parent) → settings`: the walk asks the same question for every instance. */
  memoParent: Settings | null = null
  memoResult: Settings | null = null
}

/** The set of trie nodes matching the current path; `EMPTY_CURSOR` when no rule can apply below. */
export type RuleCursor = readonly RuleNode[]

export const EMPTY_CURSOR: RuleCursor = []

const RULE_KEYS = ['ignore', 'absTol', 'relTol', 'arrays', 'text'] as const

/**
 * Path rules compiled into a trie of pattern segments. The diff walks it in step with the JSON
 * value, carrying a cursor (the nodes matching the current path), so a rule lookup is a map probe
 * per level and costs nothing at all once no pattern can match any more.
 *
 * When several patterns match one path (`/a/*` and `/a/b`), each field is taken from the most
 * specific pattern (most literal segments); on a tie, from the one defined later.
 */
export class RuleSet {
  readonly #root = new RuleNode()
  readonly #defaults: Settings
  readonly size: number

  /**
   * @param specs rules in precedence order (later wins ties).
   * @param defaults settings at the document root.
   * @throws {SyntaxError} for a malformed pattern.
   */
  constructor (specs: readonly PathRuleSpec[], defaults: Settings) {
    this.#defaults = Object.freeze({ ...defaults })
    this.size = specs.length
    specs.forEach((spec, order) => this.#add(spec, order))
  }

  get defaults (): Settings { return this.#defaults }

  /** The cursor for the document root. */
  root (): RuleCursor {
    return this.size === 0 ? EMPTY_CURSOR : this.#root.self
  }

  /** The cursor one level down, at key or array index `key`. */
  descend (cursor: RuleCursor, key: string | number): RuleCursor {
    const n = cursor.length
    if (n === 0) return EMPTY_CURSOR
    if (n === 1) {
      const node = cursor[0] as RuleNode
      const lit = node.children.size === 0 ? undefined : node.children.get(typeof key === 'number' ? String(key) : key)
      const wild = node.wildcard
      if (lit === undefined) return wild === null ? EMPTY_CURSOR : wild.self
      if (wild === null) return lit.self
      return [lit, wild]
    }
    const next: RuleNode[] = []
    const k = typeof key === 'number' ? String(key) : key
    for (let i = 0; i < n; i++) {
      const node = cursor[i] as RuleNode
      const lit = node.children.get(k)
      if (lit !== undefined) next.push(lit)
      if (node.wildcard !== null) next.push(node.wildcard)
    }
    return next.length === 0 ? EMPTY_CURSOR : next
  }

  /** The cursor for a whole path from the root. */
  cursorAt (path: ReadonlyArray<string | number>): RuleCursor {
    let c = this.root()
    for (let i = 0; i < path.length && c.length > 0; i++) c = this.descend(c, path[i] as string | number)
    return c
  }

  /** True when a rule says to ignore the value under the cursor (and its subtree). */
  ignored (cursor: RuleCursor): boolean {
    if (cursor.length === 0) return false
    if (cursor.length === 1) return (cursor[0] as RuleNode).rule?.ignore === true
    return this.#merged(cursor)?.ignore === true
  }

  /** The settings in force under the cursor, given those of the parent. Never allocates on a repeat visit. */
  apply (cursor: RuleCursor, parent: Settings): Settings {
    if (cursor.length === 0) return parent
    if (cursor.length === 1) {
      const node = cursor[0] as RuleNode
      if (node.rule === null) return parent
      if (node.memoParent === parent && node.memoResult !== null) return node.memoResult
      const result = overlay(parent, node.rule)
      node.memoParent = parent
      node.memoResult = result
      return result
    }
    const rule = this.#merged(cursor)
    return rule === null ? parent : overlay(parent, rule)
  }

  /** Settings at the first `length` segments of a path (walks the inheritance chain). */
  settingsAt (path: ReadonlyArray<string | number>, length = path.length): Settings {
    let c = this.root()
    let s = this.apply(c, this.#defaults)
    for (let i = 0; i < length && c.length > 0; i++) {
      c = this.descend(c, path[i] as string | number)
      s = this.apply(c, s)
    }
    return s
  }

  #add (spec: PathRuleSpec, order: number): void {
    let node = this.#root
    let specificity = 0
    for (const seg of parsePointer(spec.pattern)) {
      if (seg === WILDCARD) {
        node.wildcard ??= new RuleNode()
        node = node.wildcard
      } else {
        specificity++
        let child = node.children.get(seg)
        if (child === undefined) {
          child = new RuleNode()
          node.children.set(seg, child)
        }
        node = child
      }
    }
    const rule: NodeRule = node.rule ?? { specificity, order }
    for (const key of RULE_KEYS) {
      if (spec[key] !== undefined) (rule as unknown as Record<string, unknown>)[key] = spec[key]
    }
    rule.order = order
    node.rule = rule
  }

  /** Field-wise merge of the rules of several matching nodes (rare: overlapping patterns). */
  #merged (cursor: RuleCursor): NodeRule | null {
    let out: NodeRule | null = null
    const rank: Record<string, [number, number]> = {}
    for (const node of cursor) {
      const r = node.rule
      if (r === null) continue
      out ??= { specificity: 0, order: 0 }
      for (const key of RULE_KEYS) {
        if (r[key] === undefined) continue
        const prev = rank[key]
        if (prev !== undefined && (prev[0] > r.specificity || (prev[0] === r.specificity && prev[1] > r.order))) continue
        rank[key] = [r.specificity, r.order];
        (out as unknown as Record<string, unknown>)[key] = r[key]
      }
    }
    return out
  }
}

function overlay (parent: Settings, rule: NodeRule): Settings {
  return Object.freeze({
    absTol: rule.absTol ?? parent.absTol,
    relTol: rule.relTol ?? parent.relTol,
    arrays: rule.arrays ?? parent.arrays,
    text: rule.text ?? parent.text
  })
}
