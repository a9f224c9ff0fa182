import type { IncomingMessage, ServerResponse } from 'node:http'
import { Upstream } from './servers.js'

/** What the fake model answers. */
export interface FakeAnswer {
  /** The text (default "Hello there, how can I help?"); null for a tool-call-only answer. */
  content?: string | null
  /** A refusal instead of (or beside) the text. */
  refusal?: string
  /** Proposed function calls; `arguments` is the JSON text as the model writes it. */
  toolCalls?: Array<{ name: string, arguments: string }>
  /** Default `stop`, or `tool_calls` when there are calls. */
  finishReason?: string
  /** Token counts to report; null: report no usage at all. Default {input: 12, output: pieces}. */
  usage?: { input: number, output: number } | null
  model?: string
  /** Text deltas: the content is split into pieces of this many characters (default 4). */
  pieceChars?: number
}

/** How the fake behaves for one request. */
export interface FakeBehaviour {
  answer: FakeAnswer
  /** Delay before each event, ms (default 0: all events in one go). */
  delayMs?: number
  /** Awaited before writing event i (0-based): a barrier for event-by-event tests. */
  beforeEvent?: (i: number) => Promise<void>
  /** Stop after this many events: `end` closes cleanly without the end marker, `destroy` resets. */
  cutAfter?: number
  cutMode?: 'end' | 'destroy'
  /** Stop writing after this many events but keep the connection open (a hung stream). */
  hangAfter?: number
}

export type FakeApi = 'chat' | 'completions' | 'responses'

/** An SSE event: optional `event:` name and the JSON data (or the `[DONE]` sentinel). */
interface SseEvent {
  event?: string
  data: unknown
}

/**
 * A fake OpenAI-compatible server on loopback for the tests: `POST /v1/chat/completions`,
 * `/v1/completions` and `/v1/responses`, streamed (`stream: true`, Server-Sent Events as OpenAI
 * sends them, including `stream_options.include_usage`) or not, with tool calls, refusals, usage,
 * per-event delays, barriers, cut-off and hang. `behaviour` may be changed between requests or
 * chosen per request.
 */
export class FakeOpenAI extends Upstream {
  behaviour: FakeBehaviour | ((api: FakeApi, body: Record<string, unknown>) => FakeBehaviour)
  /** Open responses held by `hangAfter` (ended at close). */
  readonly #hung = new Set<ServerResponse>()
  #seq = 0

  constructor (behaviour: FakeBehaviour = { answer: {} }) {
    super((req, res, body) => { this.#handle(req, res, body) })
    this.behaviour = behaviour
  }

  override async close (): Promise<void> {
    for (const r of this.#hung) r.destroy()
    await super.close()
  }

  #handle (req: IncomingMessage, res: ServerResponse, raw: Buffer): void {
    const path = (req.url ?? '').split('?')[0] ?? ''
    const api: FakeApi | null = path.endsWith('/chat/completions') ? 'chat' : path.endsWith('/completions') ? 'completions' : path.endsWith('/responses') ? 'responses' : null
    let body: Record<string, unknown>
    try {
      body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>
    } catch {
      body = {}
    }
    if (api === null || req.method !== 'POST') {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error' } }))
      return
    }
    const b = typeof this.behaviour === 'function' ? this.behaviour(api, body) : this.behaviour
    const n = ++this.#seq
    const a = resolveAnswer(b.answer, typeof body.model === 'string' ? body.model : 'fake-model')
    if (body.stream !== true) {
      const json = JSON.stringify(nonStreamed(api, a, n))
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) })
      res.end(json)
      return
    }
    const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true
    const events = api === 'chat' ? chatEvents(a, n, includeUsage) : api === 'completions' ? completionEvents(a, n, includeUsage) : responseEvents(a, n)
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
    void this.#stream(res, events, b)
  }

  async #stream (res: ServerResponse, events: SseEvent[], b: FakeBehaviour): Promise<void> {
    for (let i = 0; i < events.length; i++) {
      if (b.cutAfter !== undefined && i >= b.cutAfter) {
        if (b.cutMode === 'destroy') res.destroy()
        else res.end()
        return
      }
      if (b.hangAfter !== undefined && i >= b.hangAfter) {
        this.#hung.add(res)
        return
      }
      if (b.beforeEvent !== undefined) await b.beforeEvent(i)
      if (b.delayMs !== undefined && b.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, b.delayMs))
      if (res.destroyed) return
      res.write(frame(events[i] as SseEvent))
    }
    res.end()
  }
}

export async function startFakeOpenAI (behaviour?: FakeBehaviour): Promise<FakeOpenAI> {
  return new FakeOpenAI(behaviour).listen()
}

/** One SSE event as bytes (WHATWG HTML §9.2.6: `event:` and `data:` lines, a blank line ends it). */
function frame (e: SseEvent): string {
  const data = e.data === '[DONE]' ? '[DONE]' : JSON.stringify(e.data)
  return (e.event !== undefined ? `event: ${e.event}\n` : '') + `data: ${data}\n\n`
}

interface Resolved {
  content: string | null
  refusal: string | null
  toolCalls: Array<{ name: string, arguments: string }>
  finishReason: string
  usage: { input: number, output: number } | null
  model: string
  pieces: string[]
}

function resolveAnswer (a: FakeAnswer, requestedModel: string): Resolved {
  const content = a.content === undefined ? 'Hello there, how can I help?' : a.content
  const size = a.pieceChars ?? 4
  const pieces: string[] = []
  if (content !== null) for (let i = 0; i < content.length; i += size) pieces.push(content.slice(i, i + size))
  const toolCalls = a.toolCalls ?? []
  return {
    content,
    refusal: a.refusal ?? null,
    toolCalls,
    finishReason: a.finishReason ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop'),
    usage: a.usage === undefined ? { input: 12, output: Math.max(1, pieces.length) } : a.usage,
    model: a.model ?? requestedModel,
    pieces
  }
}

const CREATED = 1_760_000_000

function chatUsage (u: Resolved['usage']): object | undefined {
  return u === null ? undefined : { prompt_tokens: u.input, completion_tokens: u.output, total_tokens: u.input + u.output }
}

function nonStreamed (api: FakeApi, a: Resolved, n: number): object {
  if (api === 'chat') {
    const message: Record<string, unknown> = { role: 'assistant', content: a.content, refusal: a.refusal, annotations: [] }
    if (a.toolCalls.length > 0) message.tool_calls = a.toolCalls.map((t, i) => ({ id: `call_${n}_${i}`, type: 'function', function: t }))
    const body: Record<string, unknown> = { id: `chatcmpl-${n}`, object: 'chat.completion', created: CREATED + n, model: a.model, choices: [{ index: 0, message, logprobs: null, finish_reason: a.finishReason }], system_fingerprint: 'fp_fake' }
    const u = chatUsage(a.usage)
    if (u !== undefined) body.usage = u
    return body
  }
  if (api === 'completions') {
    const body: Record<string, unknown> = { id: `cmpl-${n}`, object: 'text_completion', created: CREATED + n, model: a.model, choices: [{ index: 0, text: a.content ?? '', logprobs: null, finish_reason: a.finishReason }] }
    const u = chatUsage(a.usage)
    if (u !== undefined) body.usage = u
    return body
  }
  return response(a, n, 'completed', responseOutput(a, n))
}

function chatEvents (a: Resolved, n: number, includeUsage: boolean): SseEvent[] {
  const base = { id: `chatcmpl-${n}`, object: 'chat.completion.chunk', created: CREATED + n, model: a.model, system_fingerprint: 'fp_fake' }
  // With include_usage every chunk carries `usage: null` and a last chunk the counts (OpenAI's behaviour).
  const u = includeUsage ? { usage: null } : {}
  const chunk = (delta: object, finish: string | null = null): SseEvent => ({ data: { ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...u } })
  const events: SseEvent[] = [chunk({ role: 'assistant', content: '', refusal: null })]
  for (const p of a.pieces) events.push(chunk({ content: p }))
  if (a.refusal !== null) for (let i = 0; i < a.refusal.length; i += 8) events.push(chunk({ refusal: a.refusal.slice(i, i + 8) }))
  a.toolCalls.forEach((t, index) => {
    events.push(chunk({ tool_calls: [{ index, id: `call_${n}_${index}`, type: 'function', function: { name: t.name, arguments: '' } }] }))
    // Arguments arrive in fragments that split keys and values anywhere.
    for (let i = 0; i < t.arguments.length; i += 5) events.push(chunk({ tool_calls: [{ index, function: { arguments: t.arguments.slice(i, i + 5) } }] }))
  })
  events.push(chunk({}, a.finishReason))
  if (includeUsage && a.usage !== null) events.push({ data: { ...base, choices: [], usage: chatUsage(a.usage) } })
  events.push({ data: '[DONE]' })
  return events
}

function completionEvents (a: Resolved, n: number, includeUsage: boolean): SseEvent[] {
  const base = { id: `cmpl-${n}`, object: 'text_completion', created: CREATED + n, model: a.model }
  const events: SseEvent[] = a.pieces.map((text) => ({ data: { ...base, choices: [{ index: 0, text, logprobs: null, finish_reason: null }] } }))
  events.push({ data: { ...base, choices: [{ index: 0, text: '', logprobs: null, finish_reason: a.finishReason }] } })
  if (includeUsage && a.usage !== null) events.push({ data: { ...base, choices: [], usage: chatUsage(a.usage) } })
  events.push({ data: '[DONE]' })
  return events
}

function responseOutput (a: Resolved, n: number): object[] {
  const out: object[] = []
  if (a.content !== null || a.refusal !== null) {
    const content: object[] = []
    if (a.content !== null) content.push({ type: 'output_text', text: a.content, annotations: [], logprobs: [] })
    if (a.refusal !== null) content.push({ type: 'refusal', refusal: a.refusal })
    out.push({ id: `msg_${n}`, type: 'message', status: 'completed', role: 'assistant', content })
  }
  a.toolCalls.forEach((t, i) => out.push({ id: `fc_${n}_${i}`, type: 'function_call', status: 'completed', call_id: `call_${n}_${i}`, name: t.name, arguments: t.arguments }))
  return out
}

function response (a: Resolved, n: number, status: string, output: object[]): object {
  const incomplete = a.finishReason === 'length'
  return {
    id: `resp_${n}`,
    object: 'response',
    created_at: CREATED + n,
    status: status === 'completed' && incomplete ? 'incomplete' : status,
    incomplete_details: status === 'completed' && incomplete ? { reason: 'max_output_tokens' } : null,
    error: null,
    model: a.model,
    output,
    parallel_tool_calls: true,
    tool_choice: 'auto',
    tools: [],
    usage: status !== 'completed' || a.usage === null ? null : { input_tokens: a.usage.input, input_tokens_details: { cached_tokens: 0 }, output_tokens: a.usage.output, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: a.usage.input + a.usage.output }
  }
}

/** The Responses event sequence, as OpenAI sends it (each with `sequence_number`). */
function responseEvents (a: Resolved, n: number): SseEvent[] {
  const events: SseEvent[] = []
  const add = (type: string, fields: object): void => { events.push({ event: type, data: { type, sequence_number: events.length, ...fields } }) }
  add('response.created', { response: response(a, n, 'in_progress', []) })
  add('response.in_progress', { response: response(a, n, 'in_progress', []) })
  let oi = 0
  const final = responseOutput(a, n)
  if (a.content !== null || a.refusal !== null) {
    const itemId = `msg_${n}`
    add('response.output_item.added', { output_index: oi, item: { id: itemId, type: 'message', status: 'in_progress', role: 'assistant', content: [] } })
    let ci = 0
    if (a.content !== null) {
      add('response.content_part.added', { item_id: itemId, output_index: oi, content_index: ci, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } })
      for (const p of a.pieces) add('response.output_text.delta', { item_id: itemId, output_index: oi, content_index: ci, delta: p, logprobs: [] })
      add('response.output_text.done', { item_id: itemId, output_index: oi, content_index: ci, text: a.content, logprobs: [] })
      add('response.content_part.done', { item_id: itemId, output_index: oi, content_index: ci, part: { type: 'output_text', text: a.content, annotations: [], logprobs: [] } })
      ci++
    }
    if (a.refusal !== null) {
      add('response.content_part.added', { item_id: itemId, output_index: oi, content_index: ci, part: { type: 'refusal', refusal: '' } })
      add('response.refusal.delta', { item_id: itemId, output_index: oi, content_index: ci, delta: a.refusal })
      add('response.refusal.done', { item_id: itemId, output_index: oi, content_index: ci, refusal: a.refusal })
      add('response.content_part.done', { item_id: itemId, output_index: oi, content_index: ci, part: { type: 'refusal', refusal: a.refusal } })
    }
    add('response.output_item.done', { output_index: oi, item: final[oi] })
    oi++
  }
  a.toolCalls.forEach((t, i) => {
    const itemId = `fc_${n}_${i}`
    add('response.output_item.added', { output_index: oi, item: { id: itemId, type: 'function_call', status: 'in_progress', call_id: `call_${n}_${i}`, name: t.name, arguments: '' } })
    for (let k = 0; k < t.arguments.length; k += 5) add('response.function_call_arguments.delta', { item_id: itemId, output_index: oi, delta: t.arguments.slice(k, k + 5) })
    add('response.function_call_arguments.done', { item_id: itemId, output_index: oi, arguments: t.arguments })
    add('response.output_item.done', { output_index: oi, item: final[oi] })
    oi++
  })
  const done = response(a, n, 'completed', final) as { status: string }
  add(done.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: done })
  return events
}
