import type { JsonObject } from '../formats/format.js'
import { ChoiceStreamReducer } from './choice-stream-reducer.js'

interface ChoiceAcc {
  index: number
  text: string
  finish: string | null
}

/**
 * OpenAI (legacy) Completions stream (`object: "text_completion"`): per choice the `text`
 * fragments are concatenated and the last `finish_reason` wins; `usage` comes on the last chunk
 * with `include_usage`; the stream ends with `data: [DONE]`. The result has the shape of a
 * non-streamed `text_completion`.
 */
export class CompletionsReducer extends ChoiceStreamReducer<ChoiceAcc> {
  readonly api = 'completions' as const

  protected start (index: number): ChoiceAcc {
    return { index, text: '', finish: null }
  }

  protected add (acc: ChoiceAcc, c: JsonObject): boolean {
    if (typeof c.text !== 'string' || c.text === '') return false
    acc.text += c.text
    return true
  }

  build (): JsonObject {
    return this.body('text_completion', (c) => ({ index: c.index, text: c.text, logprobs: null, finish_reason: c.finish }))
  }
}
