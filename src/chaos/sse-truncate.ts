import { firstTokens } from './model-faults.js'

/**
 * `truncate_text` on a streamed (Server-Sent Events) OpenAI Chat Completions or Completions
 * answer: events pass through until a choice's text reaches n tokens; that event is cut, says
 * `finish_reason: "length"`, and the stream ends with `data: [DONE]`, as a model that hit its
 * token limit would end it. Events it cannot read (other APIs, comments, non-JSON data) pass
 * through unchanged.
 */
export class SseTruncator {
  readonly #tokens: number
  /** Text so far, per choice index. */
  readonly #text = new Map<number, string>()
  #buffer = ''
  /** True once the cut was made: nothing more is to be sent. */
  done = false
  /** Whether the cut happened (the fault was applied). */
  applied = false

  constructor (tokens: number) {
    this.#tokens = tokens
  }

  /** Bytes to send for this chunk of the upstream's stream. */
  push (chunk: Buffer): Buffer {
    if (this.done) return Buffer.alloc(0)
    this.#buffer += chunk.toString('utf8')
    let out = ''
    for (;;) {
      const m = /\r?\n\r?\n/.exec(this.#buffer)
      if (m === null) break
      const raw = this.#buffer.slice(0, m.index + m[0].length)
      this.#buffer = this.#buffer.slice(m.index + m[0].length)
      out += this.#event(raw)
      if (this.done) { this.#buffer = ''; break }
    }
    return Buffer.from(out)
  }

  /** The end of the upstream's stream: whatever was left undelimited. */
  flush (): Buffer {
    const rest = this.done ? '' : this.#buffer
    this.#buffer = ''
    return Buffer.from(rest)
  }

  #event (raw: string): string {
    const data = raw.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n')
    if (data === '' || data === '[DONE]') return raw
    let doc: { choices?: Array<Record<string, any>> }
    try {
      doc = JSON.parse(data) as typeof doc
    } catch {
      return raw
    }
    if (!Array.isArray(doc.choices)) return raw
    let cut = false
    for (const c of doc.choices) {
      const holder = c.delta !== null && typeof c.delta === 'object' && typeof c.delta.content === 'string' ? c.delta : typeof c.text === 'string' ? c : null
      if (holder === null) continue
      const key = holder === c ? 'text' : 'content'
      const index = typeof c.index === 'number' ? c.index : 0
      const before = this.#text.get(index) ?? ''
      const all = before + (holder[key] as string)
      const kept = firstTokens(all, this.#tokens)
      this.#text.set(index, all)
      if (kept.length < all.length) {
        holder[key] = kept.slice(before.length)
        c.finish_reason = 'length'
        cut = true
      }
    }
    if (!cut) return raw
    this.done = true
    this.applied = true
    return `data: ${JSON.stringify(doc)}\n\ndata: [DONE]\n\n`
  }
}
