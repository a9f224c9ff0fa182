import { isObject, type JsonObject } from '../formats/format.js'
import { isErrorEvent, type StreamReducer } from './sse-assembler.js'

interface ToolCallAcc {
  index: number
  id: string | null
  type: string
  name: string
  arguments: string
}

interface ChoiceAcc {
  index: number
  content: string | null
  refusal: string | null
  tools: ToolCallAcc[]
  finish: string | null
}

/**
 * OpenAI Chat Completions stream (`object: "chat.completion.chunk"`): per choice, the
 * `delta.content` and `delta.refusal` fragments are concatenated, `delta.tool_calls` fragments are
 * merged by their `index` (the first fragment of a call brings its `id` and `function.name`, the
 * next ones pieces of `function.arguments`, a JSON text), and the last `finish_reason` wins. The
 * final chunk of `stream_options: {include_usage: true}` has `choices: []` and the `usage`. The
 * stream ends with `data: [DONE]`. The result has the shape of a non-streamed `chat.completion`.
 */
export class ChatReducer implements StreamReducer {
  readonly api = 'chat' as const
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
        acc = { index, content: null, refusal: null, tools: [], finish: null }
        this.#choices.set(index, acc)
      }
      if (typeof c.finish_reason === 'string') acc.finish = c.finish_reason
      const d = c.delta
      if (!isObject(d)) continue
      // An empty delta (the role-only first chunk sends `content: ""`) adds nothing: like the
      // openai SDK's accumulator, an answer without text keeps `content: null`.
      if (typeof d.content === 'string' && d.content !== '') {
        acc.content = (acc.content ?? '') + d.content
        token = true
      }
      if (typeof d.refusal === 'string' && d.refusal !== '') {
        acc.refusal = (acc.refusal ?? '') + d.refusal
        token = true
      }
      if (Array.isArray(d.tool_calls)) {
        for (const t of d.tool_calls) if (isObject(t) && mergeTool(acc.tools, t)) token = true
      }
    }
    return token ? 'token' : 'other'
  }

  build (): JsonObject {
    const choices = [...this.#choices.values()].sort((a, b) => a.index - b.index).map((c) => {
      const message: JsonObject = { role: 'assistant', content: c.content, refusal: c.refusal }
      if (c.tools.length > 0) {
        message.tool_calls = c.tools.sort((a, b) => a.index - b.index).map((t) => ({
          id: t.id, type: t.type, function: { name: t.name, arguments: t.arguments }
        }))
      }
      return { index: c.index, message, logprobs: null, finish_reason: c.finish }
    })
    const body: JsonObject = { id: this.#id, object: 'chat.completion', created: this.#created, model: this.#model, choices }
    if (this.#fingerprint !== null) body.system_fingerprint = this.#fingerprint
    if (this.#usage !== null) body.usage = this.#usage
    return body
  }
}

/** Merges one `delta.tool_calls[]` fragment; true when it carried a name or argument text. */
function mergeTool (tools: ToolCallAcc[], t: JsonObject): boolean {
  const index = typeof t.index === 'number' ? t.index : tools.length
  let acc = tools.find((x) => x.index === index)
  if (acc === undefined) {
    acc = { index, id: null, type: 'function', name: '', arguments: '' }
    tools.push(acc)
  }
  if (typeof t.id === 'string') acc.id = t.id
  if (typeof t.type === 'string') acc.type = t.type
  const f = t.function
  if (!isObject(f)) return false
  let token = false
  if (typeof f.name === 'string' && f.name !== '') { acc.name += f.name; token = true }
  if (typeof f.arguments === 'string' && f.arguments !== '') { acc.arguments += f.arguments; token = true }
  return token
}
