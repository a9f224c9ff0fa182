import type { LlmApi } from '../llm/answer.js'
import { isObject, type ResponseFormat } from './format.js'
import { LLM_RULES, llmSummarise } from './openai-common.js'

/**
 * The OpenAI Responses API, `/v1/responses`: `{id, object: "response", created_at, model, status,
 * output: [{type: "message", content: [{type: "output_text", text}]}, {type: "function_call",
 * call_id, name, arguments}], usage: {input_tokens, output_tokens}}`, or its event stream
 * (assembled first). Normalised to one choice: the output text joined, the function calls, the
 * status as a finish reason (`completed` → `stop`/`tool_calls`, `incomplete` for
 * `max_output_tokens` → `length`).
 */
export const openaiResponses: ResponseFormat & { llm: LlmApi } = {
  name: 'openai-responses',
  llm: 'responses',
  rules: LLM_RULES,
  detect (urlPath, body) {
    if (urlPath.endsWith('/responses')) return true
    return isObject(body) && body.object === 'response' && Array.isArray(body.output)
  },
  summarise: llmSummarise('responses')
}
