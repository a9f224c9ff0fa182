import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { stickyUniform } from '../index.js'

/** Options of a demo LLM server (OpenAI-compatible, no API key, no model: canned answers). */
export interface DemoLlmOptions {
  /** `primary` is the model in production; `candidate` answers alike most of the time. */
  role: 'primary' | 'candidate'
  /** Milliseconds between streamed events (default 12 for the primary, 20 for the candidate). */
  eventDelayMs?: number
  /** Milliseconds before the first event (default 60 / 90): the time to first token. */
  firstTokenMs?: number
}

const TEMPLATES = [
  'The capital of {x} is a city with a long history and many museums worth a visit.',
  'Here is a short summary of {x}: it is well known, widely used and easy to start with.',
  'A good first step with {x} is to read the official guide and try the examples.'
]

/**
 * The demo answer to a prompt. The candidate differs on a stable share of prompts (a hash of the
 * prompt picks it): 15% reworded (`content` disagrees), 8% cut short (`finish_reason` length),
 * 20% of weather calls with another unit (`tool_calls`), 10% of JSON answers not valid JSON
 * (`json_valid`); and it answers with fewer tokens, a little later.
 */
export function demoAnswer (prompt: string, role: DemoLlmOptions['role'], wantsJson: boolean): { text: string | null, tool: { name: string, arguments: string } | null, finish: string } {
  const u = stickyUniform('demo-llm', prompt)
  const cand = role === 'candidate'
  const weather = /weather in ([A-Za-z ]+)/i.exec(prompt)
  if (weather !== null) {
    const unit = cand && u < 0.2 ? 'fahrenheit' : 'celsius'
    return { text: null, tool: { name: 'get_weather', arguments: JSON.stringify({ city: weather[1]!.trim(), unit }) }, finish: 'tool_calls' }
  }
  const topic = prompt.replace(/[^A-Za-z0-9 ]/g, '').split(' ').slice(-2).join(' ') || 'this'
  let text = TEMPLATES[Math.floor(stickyUniform('demo-llm-t', prompt) * TEMPLATES.length)]!.replace('{x}', topic)
  if (wantsJson) {
    text = JSON.stringify({ answer: text, confidence: 0.9 })
    if (cand && u < 0.1) text = text.slice(0, -1) + ', "note": maybe}'
    return { text, tool: null, finish: 'stop' }
  }
  if (cand && u < 0.15) return { text: 'Well, ' + topic + ' is a broad subject; in short, there is a lot to say and most of it depends on context.', tool: null, finish: 'stop' }
  if (cand && u < 0.23) return { text: text.slice(0, Math.floor(text.length / 2)), tool: null, finish: 'length' }
  return { text, tool: null, finish: 'stop' }
}

/** Text of the last user message (chat), the prompt (completions) or the input (responses). */
function promptOf (body: Record<string, unknown>): string {
  const msgs = body.messages
  if (Array.isArray(msgs)) {
    for (let i = msgs.length - 1; i >= 0; i--) {
      const m = msgs[i] as { role?: unknown, content?: unknown }
      if (m?.role === 'user' && typeof m.content === 'string') return m.content
    }
  }
  if (typeof body.prompt === 'string') return body.prompt
  if (typeof body.input === 'string') return body.input
  return ''
}

function wantsJsonOf (body: Record<string, unknown>): boolean {
  const rf = body.response_format as { type?: unknown } | undefined
  const tf = (body.text as { format?: { type?: unknown } } | undefined)?.format
  return rf?.type === 'json_object' || rf?.type === 'json_schema' || tf?.type === 'json_object' || tf?.type === 'json_schema'
}

const pieces = (text: string): string[] => text.match(/\S+\s*/g) ?? []

type Api = 'chat' | 'completions' | 'responses'

/** The SSE events (as data objects, with the Responses event names) of one answer. */
function events (api: Api, a: ReturnType<typeof demoAnswer>, model: string, n: number, usage: { input: number, output: number }, includeUsage: boolean): Array<{ event?: string, data: unknown }> {
  const created = Math.floor(Date.now() / 1000)
  const out: Array<{ event?: string, data: unknown }> = []
  const parts = a.text === null ? [] : pieces(a.text)
  if (api === 'chat') {
    const base = { id: `chatcmpl-demo-${n}`, object: 'chat.completion.chunk', created, model }
    const chunk = (delta: object, finish: string | null = null): void => { out.push({ data: { ...base, choices: [{ index: 0, delta, finish_reason: finish }] } }) }
    chunk({ role: 'assistant', content: '' })
    for (const p of parts) chunk({ content: p })
    if (a.tool !== null) {
      chunk({ tool_calls: [{ index: 0, id: `call_demo_${n}`, type: 'function', function: { name: a.tool.name, arguments: '' } }] })
      for (let i = 0; i < a.tool.arguments.length; i += 8) chunk({ tool_calls: [{ index: 0, function: { arguments: a.tool.arguments.slice(i, i + 8) } }] })
    }
    chunk({}, a.finish)
    if (includeUsage) out.push({ data: { ...base, choices: [], usage: { prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output } } })
    out.push({ data: '[DONE]' })
    return out
  }
  if (api === 'completions') {
    const base = { id: `cmpl-demo-${n}`, object: 'text_completion', created, model }
    for (const p of parts) out.push({ data: { ...base, choices: [{ index: 0, text: p, finish_reason: null }] } })
    out.push({ data: { ...base, choices: [{ index: 0, text: '', finish_reason: a.finish }] } })
    if (includeUsage) out.push({ data: { ...base, choices: [], usage: { prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output } } })
    out.push({ data: '[DONE]' })
    return out
  }
  const final = responseBody(a, model, n, usage, created)
  const add = (type: string, fields: object): void => { out.push({ event: type, data: { type, sequence_number: out.length, ...fields } }) }
  add('response.created', { response: { ...final, status: 'in_progress', output: [], usage: null } })
  if (a.text !== null) {
    add('response.output_item.added', { output_index: 0, item: { id: `msg_demo_${n}`, type: 'message', status: 'in_progress', role: 'assistant', content: [] } })
    for (const p of parts) add('response.output_text.delta', { item_id: `msg_demo_${n}`, output_index: 0, content_index: 0, delta: p })
  }
  if (a.tool !== null) {
    add('response.output_item.added', { output_index: 0, item: { id: `fc_demo_${n}`, type: 'function_call', status: 'in_progress', call_id: `call_demo_${n}`, name: a.tool.name, arguments: '' } })
    add('response.function_call_arguments.delta', { item_id: `fc_demo_${n}`, output_index: 0, delta: a.tool.arguments })
  }
  add(final.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: final })
  return out
}

function responseBody (a: ReturnType<typeof demoAnswer>, model: string, n: number, usage: { input: number, output: number }, created: number): { status: string } & Record<string, unknown> {
  const output: object[] = []
  if (a.text !== null) output.push({ id: `msg_demo_${n}`, type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: a.text, annotations: [] }] })
  if (a.tool !== null) output.push({ id: `fc_demo_${n}`, type: 'function_call', status: 'completed', call_id: `call_demo_${n}`, name: a.tool.name, arguments: a.tool.arguments })
  const incomplete = a.finish === 'length'
  return {
    id: `resp_demo_${n}`,
    object: 'response',
    created_at: created,
    status: incomplete ? 'incomplete' : 'completed',
    incomplete_details: incomplete ? { reason: 'max_output_tokens' } : null,
    model,
    output,
    usage: { input_tokens: usage.input, output_tokens: usage.output, total_tokens: usage.input + usage.output }
  }
}

function nonStreamed (api: Api, a: ReturnType<typeof demoAnswer>, model: string, n: number, usage: { input: number, output: number }): object {
  const created = Math.floor(Date.now() / 1000)
  const u = { prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output }
  if (api === 'chat') {
    const message: Record<string, unknown> = { role: 'assistant', content: a.text }
    if (a.tool !== null) message.tool_calls = [{ id: `call_demo_${n}`, type: 'function', function: a.tool }]
    return { id: `chatcmpl-demo-${n}`, object: 'chat.completion', created, model, choices: [{ index: 0, message, finish_reason: a.finish }], usage: u }
  }
  if (api === 'completions') return { id: `cmpl-demo-${n}`, object: 'text_completion', created, model, choices: [{ index: 0, text: a.text ?? '', finish_reason: a.finish }], usage: u }
  return responseBody(a, model, n, usage, created)
}

function json (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

let seq = 0

function handle (opts: DemoLlmOptions, req: IncomingMessage, res: ServerResponse, raw: Buffer): void {
  const path = (req.url ?? '/').split('?')[0]!
  if (req.method === 'GET' && (path === '/healthz' || path === '/v1/models')) {
    json(res, 200, { object: 'list', data: [{ id: opts.role === 'primary' ? 'demo-llm-v1' : 'demo-llm-v2', object: 'model' }] })
    return
  }
  const api: Api | null = path.endsWith('/chat/completions') ? 'chat' : path.endsWith('/completions') ? 'completions' : path.endsWith('/responses') ? 'responses' : null
  if (req.method !== 'POST' || api === null) {
    json(res, 404, { error: { message: `no route ${req.method ?? ''} ${path}`, type: 'invalid_request_error' } })
    return
  }
  let body: Record<string, unknown>
  try {
    body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>
  } catch {
    json(res, 400, { error: { message: 'body must be JSON', type: 'invalid_request_error' } })
    return
  }
  const prompt = promptOf(body)
  const a = demoAnswer(prompt, opts.role, wantsJsonOf(body))
  const n = ++seq
  const model = opts.role === 'primary' ? 'demo-llm-v1' : 'demo-llm-v2'
  const out = a.text === null ? 12 : pieces(a.text).length
  // Token counts as a tokenizer would report them, more or less: the candidate's is leaner.
  const usage = { input: pieces(prompt).length + 8, output: opts.role === 'primary' ? Math.ceil(out * 1.3) : Math.ceil(out * 1.1) }
  if (body.stream !== true) {
    json(res, 200, nonStreamed(api, a, model, n, usage))
    return
  }
  const includeUsage = (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true
  const list = events(api, a, model, n, usage, includeUsage)
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  const gap = opts.eventDelayMs ?? (opts.role === 'primary' ? 12 : 20)
  let i = 0
  const next = (): void => {
    if (res.destroyed) return
    if (i === list.length) { res.end(); return }
    const e = list[i++]!
    res.write((e.event !== undefined ? `event: ${e.event}\n` : '') + `data: ${e.data === '[DONE]' ? '[DONE]' : JSON.stringify(e.data)}\n\n`)
    setTimeout(next, gap)
  }
  setTimeout(next, opts.firstTokenMs ?? (opts.role === 'primary' ? 60 : 90))
}

/** Starts a demo LLM server on 127.0.0.1:port (0 picks a free port). */
export function startDemoLlm (port: number, opts: DemoLlmOptions): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => handle(opts, req, res, Buffer.concat(chunks)))
    req.on('error', () => {})
  })
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new Error(`demo LLM ${opts.role}: 127.0.0.1:${port} is already in use (EADDRINUSE)`) : err)
    })
    server.listen(port, '127.0.0.1', () => resolve(server))
  })
}
