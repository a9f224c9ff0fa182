import { isObject, type JsonObject } from '../formats/format.js'
import { ChoiceStreamReducer } from './choice-stream-reducer.js'

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
export class ChatReducer extends ChoiceStreamReducer<ChoiceAcc> {
  readonly api = 'chat' as const

  protected start (index: number): ChoiceAcc {
    return { index, content: null, refusal: null, tools: [], finish: null }
  }

  protected add (acc: ChoiceAcc, c: JsonObject): boolean {
    const d = c.delta
    if (!isObject(d)) return false
    let token = false
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
    return token
  }

  build (): JsonObject {
    return this.body('chat.completion', (c) => {
      const message: JsonObject = { role: 'assistant', content: c.content, refusal: c.refusal }
      if (c.tools.length > 0) {
        message.tool_calls = c.tools.sort((a, b) => a.index - b.index).map((t) => ({
          id: t.id, type: t.type, function: { name: t.name, arguments: t.arguments }
        }))
      }
      return { index: c.index, message, logprobs: null, finish_reason: c.finish }
    })
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
