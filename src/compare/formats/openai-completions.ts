import type { LlmApi } from '../llm/answer.js'
import { isObject, type ResponseFormat } from './format.js'
import { LLM_RULES, llmSummarise } from './openai-common.js'

/**
 * OpenAI-compatible (legacy) Completions, `/v1/completions`:
 * `{id, object: "text_completion", created, model, choices: [{index, text, finish_reason}], usage}`,
 * streamed or not. Each choice is one instance; kinds `content` (the text) and `finish_reason`.
 */
export const openaiCompletions: ResponseFormat & { llm: LlmApi } = {
  name: 'openai-completions',
  llm: 'completions',
  rules: LLM_RULES,
  detect (urlPath, body) {
    if (urlPath.endsWith('/completions') && !urlPath.endsWith('/chat/completions')) return true
    return isObject(body) && Array.isArray(body.choices) && body.object === 'text_completion'
  },
  summarise: llmSummarise('completions')
}
