import { isObject, type JsonObject } from '../formats/format.js'
import { isErrorEvent, type StreamReducer } from './sse-assembler.js'

interface ChoiceAcc {
  index: number
  text: string
  finish: string | null
}

/**
 * OpenAI (legacy) Completions stream (`object: "text_completion"`): per choice the `text`
 * fragments are concatenated and the last `finish_reason` wins; `usage` comes on the last chunk
 * with `include_usage`; the stream ends with `data: [DONE]`. The result has the shape of a
 * non-streamed `text_completion`.
 */
export class CompletionsReducer implements StreamReducer {
  readonly api = 'completions' as const
  #done = false
  #id: string | null = null
  #created: number | null = null
  #model: string | null = null
  #fingerprint: string | null = null
  #usage: JsonObject | null = null
  readonly #choices = new Map<number, ChoiceAcc>()

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
        acc = { index, text: '', finish: null }
        this.#choices.set(index, acc)
      }
      if (typeof c.text === 'string' && c.text !== '') { acc.text += c.text; token = true }
      if (typeof c.finish_reason === 'string') acc.finish = c.finish_reason
    }
    return token ? 'token' : 'other'
  }

  build (): JsonObject {
    const choices = [...this.#choices.values()].sort((a, b) => a.index - b.index)
      .map((c) => ({ index: c.index, text: c.text, logprobs: null, finish_reason: c.finish }))
    const body: JsonObject = { id: this.#id, object: 'text_completion', created: this.#created, model: this.#model, choices }
    if (this.#fingerprint !== null) body.system_fingerprint = this.#fingerprint
    if (this.#usage !== null) body.usage = this.#usage
    return body
  }
}
