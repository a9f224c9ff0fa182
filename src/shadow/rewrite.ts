import type { ShadowConfig } from '../config/schema.js'
import { parsePointer } from '../compare/json-pointer.js'

/**
 * A shadow's request rewrites (issue #3 `rewrite`), compiled once: a regex replace on path+query
 * (the shadow often serves the model under another name) and JSON Pointer sets on the body
 * (e.g. OpenAI-style `/model`).
 */
export class RequestRewrite {
  readonly #pathFrom: RegExp | null
  readonly #pathTo: string
  readonly #json: Array<[string[], unknown]> | null

  constructor (cfg: ShadowConfig['rewrite']) {
    this.#pathFrom = cfg?.path !== undefined ? new RegExp(cfg.path.from) : null
    this.#pathTo = cfg?.path?.to ?? ''
    const json = cfg?.json
    this.#json = json === undefined || Object.keys(json).length === 0
      ? null
      : Object.entries(json).map(([pointer, value]) => [parsePointer(pointer), value])
  }

  path (url: string): string {
    return this.#pathFrom === null ? url : url.replace(this.#pathFrom, this.#pathTo)
  }

  get rewritesBody (): boolean {
    return this.#json !== null
  }

  /**
   * The body with the JSON sets applied, or null when it cannot be rewritten: not JSON, not an
   * object or array, or too deep for JSON.stringify after JSON.parse accepted it. The caller then
   * skips the copy (`rewrite_failed`): sending the production body unchanged would give the
   * shadow a request it was configured not to get (another model name, another key).
   */
  body (body: Buffer): Buffer | null {
    if (this.#json === null) return body
    try {
      const doc: unknown = JSON.parse(body.toString('utf8'))
      if (typeof doc !== 'object' || doc === null) return null
      for (const [segments, value] of this.#json) setPointer(doc, segments, value)
      return Buffer.from(JSON.stringify(doc), 'utf8')
    } catch {
      return null
    }
  }
}

/** Sets the value at the pointer, creating missing objects on the way; `-` appends to an array. */
function setPointer (doc: object, segments: string[], value: unknown): void {
  if (segments.length === 0) return
  let node = doc as Record<string, unknown>
  for (let i = 0; i < segments.length - 1; i++) {
    const seg = segments[i]!
    let next = node[seg]
    if (typeof next !== 'object' || next === null) {
      next = {}
      node[seg] = next
    }
    node = next as Record<string, unknown>
  }
  const last = segments[segments.length - 1]!
  if (Array.isArray(node) && last === '-') node.push(value)
  else node[last] = value
}
