import type { LlmApi } from '../llm/answer.js'
import { isObject, type ResponseFormat } from './format.js'
import { LLM_RULES, llmSummarise } from './openai-common.js'

/**
 * OpenAI-compatible Chat Completions (vLLM, TGI, llama.cpp, Ollama, OpenAI):
 * `{id, object: "chat.completion", created, model, choices: [{index, message: {role, content,
 * refusal, tool_calls?}, finish_reason}], usage, system_fingerprint}`, or the same answer streamed
 * (`text/event-stream` of `chat.completion.chunk`, assembled first). Both are normalised to one
 * document and compared by agreement kind (content, tool_calls, finish_reason, refusal,
 * json_valid): see docs/llm.md. Each choice is one instance.
 */
export const openaiChat: ResponseFormat & { llm: LlmApi } = {
  name: 'openai-chat',
  llm: 'chat',
  rules: LLM_RULES,
  detect (urlPath, body) {
    if (urlPath.endsWith('/chat/completions')) return true
    if (!isObject(body) || !Array.isArray(body.choices)) return false
    return typeof body.object === 'string' && body.object.startsWith('chat.completion')
  },
  summarise: llmSummarise('chat')
}
