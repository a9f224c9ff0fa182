import { isObject, type ResponseFormat } from './format.js'

/**
 * OpenAI-compatible chat and text completions (vLLM, TGI, llama.cpp, Ollama, OpenAI):
 * `{id, object, created, model, choices: [{index, message: {role, content, tool_calls?}, finish_reason}], usage, system_fingerprint}`
 * or, for `/v1/completions`, `choices[].text`.
 *
 * - Each choice is one instance. Its text (`message.content`, else `text`) agrees when the
 *   normalised similarity reaches `compare.textSimilarity`; the generic diff applies the same
 *   similarity at those two paths, so a reworded-but-similar answer is not a difference either.
 *   A choice without text on both sides (tool calls) agrees only when its `message` has no
 *   structural difference.
 * - Ignored by default: `/id`, `/created`, `/usage`, `/system_fingerprint` (they change per call or
 *   measure cost, not the answer) and `/model` (it names the deployment, and a shadow is by
 *   definition another one). Override with `compare.paths: {"/model": {ignore: false}}`.
 * - Streaming (SSE) responses are not JSON and are reported unparseable.
 */
export const openaiChat: ResponseFormat = {
  name: 'openai-chat',
  rules: [
    { pattern: '/id', ignore: true },
    { pattern: '/created', ignore: true },
    { pattern: '/usage', ignore: true },
    { pattern: '/system_fingerprint', ignore: true },
    { pattern: '/model', ignore: true },
    { pattern: '/choices/*/message/content', text: true },
    { pattern: '/choices/*/text', text: true }
  ],
  detect (urlPath, body) {
    if (urlPath.endsWith('/chat/completions') || urlPath.endsWith('/completions')) return true
    if (!isObject(body) || !Array.isArray(body.choices)) return false
    return typeof body.object === 'string' && (body.object.startsWith('chat.completion') || body.object === 'text_completion')
  },
  summarise (primary, shadow, cmp, tally) {
    const p = choicesOf(primary)
    const s = choicesOf(shadow)
    if (p === null && s === null) return false
    const np = p?.length ?? 0
    const ns = s?.length ?? 0
    for (let i = 0; i < Math.max(np, ns); i++) {
      if (i >= np || i >= ns) { cmp.absent(tally); continue }
      const pc = (p as unknown[])[i]
      const sc = (s as unknown[])[i]
      cmp.begin()
      const pt = textOf(pc)
      const st = textOf(sc)
      if (pt !== undefined && st !== undefined) {
        cmp.text(pt.value, st.value, ['choices', i, ...pt.path])
      } else if (pt !== undefined || st !== undefined) {
        cmp.disagree()
      } else {
        cmp.structural(isObject(pc) ? pc.message : pc, isObject(sc) ? sc.message : sc, ['choices', i, 'message'])
      }
      cmp.end(tally)
    }
    return true
  }
}

function choicesOf (body: unknown): unknown[] | null {
  return isObject(body) && Array.isArray(body.choices) ? body.choices : null
}

function textOf (choice: unknown): { value: string, path: string[] } | undefined {
  if (!isObject(choice)) return undefined
  const m = choice.message
  if (isObject(m) && typeof m.content === 'string') return { value: m.content, path: ['message', 'content'] }
  if (typeof choice.text === 'string') return { value: choice.text, path: ['text'] }
  return undefined
}
