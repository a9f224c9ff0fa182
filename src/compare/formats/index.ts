import type { CompareFormat } from '../../config/schema.js'
import { urlPathOf, type ConcreteFormat, type ResponseFormat } from './format.js'
import { json } from './json.js'
import { kserveV1 } from './kserve-v1.js'
import { mlflow } from './mlflow.js'
import { oipV2 } from './oip-v2.js'
import { openaiChat } from './openai-chat.js'
import { openaiCompletions } from './openai-completions.js'
import { openaiResponses } from './openai-responses.js'

export type { ConcreteFormat, ResponseFormat } from './format.js'

/** Every format by name. */
export const FORMATS: Readonly<Record<ConcreteFormat, ResponseFormat>> = {
  'kserve-v1': kserveV1,
  'oip-v2': oipV2,
  mlflow,
  'openai-chat': openaiChat,
  'openai-completions': openaiCompletions,
  'openai-responses': openaiResponses,
  json
}

/**
 * Detection order for `format: auto`. The more specific shapes go first: OIP v2 `outputs`
 * tensors before TF Serving `outputs`, MLflow's `/invocations` before KServe's `predictions`.
 */
const DETECT_ORDER: readonly ResponseFormat[] = [openaiChat, openaiCompletions, openaiResponses, oipV2, mlflow, kserveV1]

/**
 * Resolves the format for one exchange. An explicit format is used as is. For `auto`, each
 * format is asked about the request path and the primary body, then the shadow body (the primary
 * may have answered an error); the first that recognises one wins, else `json`.
 */
export function resolveFormat (configured: CompareFormat, url: string, primary: unknown, shadow: unknown): ResponseFormat {
  if (configured !== 'auto') return FORMATS[configured]
  const path = urlPathOf(url)
  for (const f of DETECT_ORDER) if (f.detect(path, primary)) return f
  for (const f of DETECT_ORDER) if (f.detect(path, shadow)) return f
  return json
}
