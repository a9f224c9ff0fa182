import { isObject, type JsonObject } from '../formats/format.js'

/** The OpenAI-compatible APIs penumbra understands. */
export type LlmApi = 'chat' | 'completions' | 'responses'

/** One proposed function call, its arguments parsed (the raw string when they are not JSON). */
export interface LlmToolCall {
  id: string | null
  type: 'function'
  function: { name: string, arguments: unknown }
}

/** The assistant message of a chat or Responses answer. */
export interface LlmMessage {
  role: 'assistant'
  /** The generated text (all text parts joined), null when the answer has none (tool calls only). */
  content: string | null
  /** The refusal text when the model refused, else null. */
  refusal: string | null
  /** Sorted by function name (stable), so that parallel calls in another order still pair up. */
  tool_calls: LlmToolCall[]
}

/** One choice: `message` for chat and Responses, `text` for Completions. */
export interface LlmChoice {
  index: number
  message?: LlmMessage
  text?: string
  /** `stop`, `length`, `tool_calls`, `content_filter` … (Responses statuses are mapped to these). */
  finish_reason: string | null
}

/** Token counts as the server reported them (null fields: not reported). */
export interface LlmUsage {
  input_tokens: number | null
  output_tokens: number | null
}

/**
 * The normalised answer: one chat-completion-shaped document for every API, streamed or not.
 * LLM formats compare these documents, so comparison paths (`compare.paths`, differences) are
 * paths into this shape: `/choices/0/message/content`, `/choices/0/finish_reason`,
 * `/choices/0/message/tool_calls/0/function/arguments/city`, `/choices/0/text`, `/model` …
 */
export interface LlmAnswer {
  api: LlmApi
  id: string | null
  model: string | null
  created: number | null
  system_fingerprint: string | null
  choices: LlmChoice[]
  usage: LlmUsage | null
}

/**
 * Normalises a non-streamed (or assembled) body of the given API; null when the body does not
 * have that API's shape (an error body, another API).
 */
export function normaliseAnswer (api: LlmApi, body: unknown): LlmAnswer | null {
  if (!isObject(body)) return null
  if (api === 'responses') return fromResponse(body)
  if (!Array.isArray(body.choices)) return null
  const choices: LlmChoice[] = []
  for (let i = 0; i < body.choices.length; i++) {
    const c = body.choices[i]
    if (!isObject(c)) continue
    const index = typeof c.index === 'number' ? c.index : i
    const finish = str(c.finish_reason)
    if (api === 'completions') {
      choices.push({ index, text: typeof c.text === 'string' ? c.text : '', finish_reason: finish })
    } else {
      const message = chatMessage(c.message)
      // `format: openai-chat` used to cover /v1/completions too: a bare `text` is the content.
      if (c.message === undefined && typeof c.text === 'string') message.content = c.text
      choices.push({ index, message, finish_reason: finish })
    }
  }
  choices.sort((a, b) => a.index - b.index)
  const u = isObject(body.usage) ? body.usage : null
  return {
    api,
    id: str(body.id),
    model: str(body.model),
    created: num(body.created),
    system_fingerprint: str(body.system_fingerprint),
    choices,
    usage: u === null ? null : { input_tokens: num(u.prompt_tokens), output_tokens: num(u.completion_tokens) }
  }
}

function chatMessage (m: unknown): LlmMessage {
  const msg: LlmMessage = { role: 'assistant', content: null, refusal: null, tool_calls: [] }
  if (!isObject(m)) return msg
  msg.content = textOf(m.content)
  msg.refusal = str(m.refusal)
  if (Array.isArray(m.tool_calls)) {
    for (const t of m.tool_calls) {
      if (!isObject(t) || !isObject(t.function)) continue
      msg.tool_calls.push(toolCall(str(t.id), t.function.name, t.function.arguments))
    }
  } else if (isObject(m.function_call)) {
    // The deprecated single `function_call` is the same proposal.
    msg.tool_calls.push(toolCall(null, m.function_call.name, m.function_call.arguments))
  }
  sortCalls(msg.tool_calls)
  return msg
}

/** Chat content is a string, or (some servers, and multi-part answers) an array of `{type: 'text', text}` parts. */
function textOf (c: unknown): string | null {
  if (typeof c === 'string') return c
  if (!Array.isArray(c)) return null
  let out: string | null = null
  for (const p of c) if (isObject(p) && typeof p.text === 'string') out = (out ?? '') + p.text
  return out
}

/**
 * A Responses API object: `output` items of type `message` (content parts `output_text` and
 * `refusal`) and `function_call`; other items (reasoning, built-in tool calls) are not compared.
 * The status maps to a chat finish reason: `completed` → `stop` (`tool_calls` when it proposes
 * calls), `incomplete` → `length` for `max_output_tokens`, else its reason; `failed` → `error`.
 */
function fromResponse (body: JsonObject): LlmAnswer | null {
  if (!Array.isArray(body.output)) return null
  const msg: LlmMessage = { role: 'assistant', content: null, refusal: null, tool_calls: [] }
  for (const item of body.output) {
    if (!isObject(item)) continue
    if (item.type === 'message' && Array.isArray(item.content)) {
      for (const part of item.content) {
        if (!isObject(part)) continue
        if (part.type === 'output_text' && typeof part.text === 'string') msg.content = (msg.content ?? '') + part.text
        else if (part.type === 'refusal' && typeof part.refusal === 'string') msg.refusal = (msg.refusal ?? '') + part.refusal
      }
    } else if (item.type === 'function_call') {
      msg.tool_calls.push(toolCall(str(item.call_id) ?? str(item.id), item.name, item.arguments))
    }
  }
  sortCalls(msg.tool_calls)
  const u = isObject(body.usage) ? body.usage : null
  return {
    api: 'responses',
    id: str(body.id),
    model: str(body.model),
    created: num(body.created_at),
    system_fingerprint: null,
    choices: [{ index: 0, message: msg, finish_reason: responseFinish(body, msg.tool_calls.length > 0) }],
    usage: u === null ? null : { input_tokens: num(u.input_tokens), output_tokens: num(u.output_tokens) }
  }
}

function responseFinish (body: JsonObject, calls: boolean): string | null {
  const status = str(body.status)
  if (status === 'completed') return calls ? 'tool_calls' : 'stop'
  if (status === 'incomplete') {
    const reason = isObject(body.incomplete_details) ? str(body.incomplete_details.reason) : null
    return reason === 'max_output_tokens' ? 'length' : reason ?? 'incomplete'
  }
  if (status === 'failed') return 'error'
  return status
}

function toolCall (id: string | null, name: unknown, args: unknown): LlmToolCall {
  return { id, type: 'function', function: { name: typeof name === 'string' ? name : '', arguments: parseArguments(args) } }
}

/** Arguments are a JSON text; compared parsed (key order, whitespace and number spelling do not matter). */
function parseArguments (args: unknown): unknown {
  if (typeof args !== 'string') return args ?? null
  try {
    return JSON.parse(args)
  } catch {
    return args
  }
}

function sortCalls (calls: LlmToolCall[]): void {
  // Array.prototype.sort is stable (ES2019): calls to the same function keep their order.
  calls.sort((a, b) => (a.function.name < b.function.name ? -1 : a.function.name > b.function.name ? 1 : 0))
}

function str (v: unknown): string | null {
  return typeof v === 'string' ? v : null
}

function num (v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null
}
