import { isObject, type JsonObject } from '../formats/format.js'
import { isErrorEvent, type StreamReducer } from './sse-assembler.js'

/** A choice accumulator: at least its index and the last finish reason. */
export interface ChoiceAccBase {
  index: number
  finish: string | null
}

/**
 * The common part of the OpenAI streams whose chunks carry `choices[]` (Chat Completions and the
 * legacy Completions): the envelope (`id`, `created`, `model`, `system_fingerprint`, the `usage`
 * of the last chunk with `include_usage`), one accumulator per choice index, the last
 * `finish_reason`, and `data: [DONE]` as the end. Subclasses say how a choice starts and what a
 * choice chunk adds.
 */
export abstract class ChoiceStreamReducer<Acc extends ChoiceAccBase> implements StreamReducer {
  abstract readonly api: StreamReducer['api']
  #done = false
  #id: string | null = null
  #created: number | null = null
  #model: string | null = null
  #fingerprint: string | null = null
  #usage: JsonObject | null = null
  readonly #choices = new Map<number, Acc>()

  /** A fresh accumulator for choice `index`. */
  protected abstract start (index: number): Acc
  /** Adds one choice chunk (its `finish_reason` is already taken); true when it carried a token. */
  protected abstract add (acc: Acc, chunk: JsonObject): boolean

  get complete (): boolean {
    return this.#done
  }

  sentinel (): void {
    this.#done = true
  }

  apply (data: JsonObject, event: string | undefined): 'token' | 'error' | 'other' {
    if (isErrorEvent(data, event)) return 'error'
    if (this.#id === null && typeof data.id === 'string') this.#id = data.id
    if (this.#created === null && typeof data.created === 'number') this.#created = data.created
    if (this.#model === null && typeof data.model === 'string') this.#model = data.model
    if (typeof data.system_fingerprint === 'string') this.#fingerprint = data.system_fingerprint
    if (isObject(data.usage)) this.#usage = data.usage
    if (!Array.isArray(data.choices)) return 'other'
    let token = false
    for (const c of data.choices) {
      if (!isObject(c)) continue
      const index = typeof c.index === 'number' ? c.index : 0
      let acc = this.#choices.get(index)
      if (acc === undefined) {
        acc = this.start(index)
        this.#choices.set(index, acc)
      }
      if (typeof c.finish_reason === 'string') acc.finish = c.finish_reason
      if (this.add(acc, c)) token = true
    }
    return token ? 'token' : 'other'
  }

  abstract build (): JsonObject

  /** The non-streamed body: the envelope with `object` and the choices, in index order. */
  protected body (object: string, choice: (acc: Acc) => JsonObject): JsonObject {
    const choices = [...this.#choices.values()].sort((a, b) => a.index - b.index).map(choice)
    const body: JsonObject = { id: this.#id, object, created: this.#created, model: this.#model, choices }
    if (this.#fingerprint !== null) body.system_fingerprint = this.#fingerprint
    if (this.#usage !== null) body.usage = this.#usage
    return body
  }
}
