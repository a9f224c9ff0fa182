import { isObject, type JsonObject } from '../formats/format.js'
import type { StreamReducer } from './sse-assembler.js'

/**
 * OpenAI Responses API stream: typed events (`data.type`, repeated as the SSE `event:` name).
 * `response.output_item.added` opens an output item (a `message` or a `function_call`),
 * `response.output_text.delta` / `response.refusal.delta` append to a message's content part,
 * `response.function_call_arguments.delta` to a call's arguments, and the `.done` events and
 * `response.output_item.done` carry the final values. The stream is complete at
 * `response.completed` or `response.incomplete` (whose `response` is the whole answer, as a
 * non-streamed call returns it); `response.failed` and `error` are failures. Without a terminal
 * event the stream was cut off.
 */
export class ResponsesReducer implements StreamReducer {
  readonly api = 'responses' as const
  #done = false
  #meta: JsonObject | null = null
  #final: JsonObject | null = null
  readonly #items = new Map<number, JsonObject>()

  get complete (): boolean {
    return this.#done
  }

  /** Some servers end a Responses stream with `[DONE]` too; only the terminal event counts. */
  sentinel (): void {}

  apply (data: JsonObject): 'token' | 'error' | 'other' {
    const type = data.type
    switch (type) {
      case 'response.created':
      case 'response.in_progress':
        if (isObject(data.response)) this.#meta = data.response
        return 'other'
      case 'response.output_item.added':
      case 'response.output_item.done':
        if (isObject(data.item)) this.#items.set(outputIndex(data, this.#items.size), { ...data.item })
        return 'other'
      case 'response.output_text.delta':
        return this.#part(data, 'output_text', 'text', false) ? 'token' : 'other'
      case 'response.output_text.done':
        this.#part(data, 'output_text', 'text', true)
        return 'other'
      case 'response.refusal.delta':
        return this.#part(data, 'refusal', 'refusal', false) ? 'token' : 'other'
      case 'response.refusal.done':
        this.#part(data, 'refusal', 'refusal', true)
        return 'other'
      case 'response.function_call_arguments.delta':
      case 'response.function_call_arguments.done': {
        const item = this.#item(data, 'function_call')
        const done = type === 'response.function_call_arguments.done'
        const v = done ? data.arguments : data.delta
        if (typeof v !== 'string') return 'other'
        item.arguments = done ? v : (typeof item.arguments === 'string' ? item.arguments : '') + v
        return !done && v !== '' ? 'token' : 'other'
      }
      case 'response.completed':
      case 'response.incomplete':
        this.#done = true
        if (isObject(data.response)) this.#final = data.response
        return 'other'
      case 'response.failed':
      case 'error':
        return 'error'
      default:
        return 'other'
    }
  }

  build (): JsonObject {
    const final = this.#final
    // The terminal event's response is authoritative; its output is rebuilt from the deltas only
    // when a server leaves it out.
    if (final !== null && Array.isArray(final.output) && final.output.length > 0) return final
    const output = [...this.#items.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1])
    return { ...(this.#meta ?? {}), ...(final ?? {}), object: 'response', status: final?.status ?? 'completed', output }
  }

  #item (data: JsonObject, type: string): JsonObject {
    const i = outputIndex(data, 0)
    let item = this.#items.get(i)
    if (item === undefined) {
      item = type === 'message' ? { type, role: 'assistant', content: [] } : { type, arguments: '' }
      if (typeof data.item_id === 'string') item.id = data.item_id
      this.#items.set(i, item)
    }
    return item
  }

  /** Appends (or with `done`, sets) the text of content part `content_index`; true when it added text. */
  #part (data: JsonObject, partType: string, field: string, done: boolean): boolean {
    const v = done ? data[field] : data.delta
    if (typeof v !== 'string') return false
    const item = this.#item(data, 'message')
    if (!Array.isArray(item.content)) item.content = []
    const content = item.content as unknown[]
    const ci = typeof data.content_index === 'number' && data.content_index >= 0 && data.content_index < 1024 ? data.content_index : 0
    while (content.length <= ci) content.push(null)
    let part = content[ci]
    if (!isObject(part)) {
      part = { type: partType, [field]: '' }
      content[ci] = part
    }
    const p = part as JsonObject
    p[field] = done ? v : (typeof p[field] === 'string' ? p[field] : '') + v
    return !done && v !== ''
  }
}

function outputIndex (data: JsonObject, fallback: number): number {
  const i = data.output_index
  return typeof i === 'number' && Number.isInteger(i) && i >= 0 ? i : fallback
}
