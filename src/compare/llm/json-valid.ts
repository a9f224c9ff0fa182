import { createRequire } from 'node:module'
import type { Ajv as AjvT, ValidateFunction } from 'ajv'
import stringify from 'fast-json-stable-stringify'
import { LRUCache } from 'lru-cache'
import { isObject } from '../formats/format.js'

/** What a request asked of the answer's text: JSON, and optionally JSON valid against a schema. */
export interface JsonRequirement {
  /** The JSON Schema of `json_schema` mode; null for `json_object` (any JSON) or an unusable schema. */
  validate: ValidateFunction | null
}

/** Schemas larger than this (as JSON text) are not compiled: the answer is only checked to be JSON. */
export const MAX_SCHEMA_CHARS = 64 * 1024

// strict: false: a request's schema may use keywords (OpenAI's `strict`, vendor `x-` keys, formats)
// that Ajv does not know; they are ignored rather than making the schema unusable.
// Loaded on the first answer that asks for a JSON Schema: ajv costs ~11 MB of RSS at start-up.
const require = createRequire(import.meta.url)
let ajvInstance: AjvT | null = null
function ajvOf (): AjvT {
  if (ajvInstance === null) {
    const { Ajv } = require('ajv') as { Ajv: new (o: object) => AjvT }
    ajvInstance = new Ajv({ strict: false, allErrors: false, validateFormats: false })
  }
  return ajvInstance
}
/** Compiled validators by canonical schema text: the same few schemas recur on every request of a client. */
const compiled = new LRUCache<string, ValidateFunction | false>({ max: 64 })

/**
 * The JSON requirement of an OpenAI-compatible request body, or null when it asks for free text:
 * Chat Completions `response_format: {type: "json_object" | "json_schema", json_schema: {schema}}`,
 * Responses `text: {format: {type: "json_object" | "json_schema", schema}}`.
 */
export function jsonRequirement (request: unknown): JsonRequirement | null {
  if (!isObject(request)) return null
  let fmt: unknown = request.response_format
  let schema: unknown
  if (isObject(fmt)) {
    schema = isObject(fmt.json_schema) ? fmt.json_schema.schema : undefined
  } else if (isObject(request.text) && isObject(request.text.format)) {
    fmt = request.text.format
    schema = (fmt as Record<string, unknown>).schema
  } else {
    return null
  }
  const type = (fmt as Record<string, unknown>).type
  if (type === 'json_object') return { validate: null }
  if (type !== 'json_schema') return null
  return { validate: isObject(schema) ? validatorFor(schema) : null }
}

function validatorFor (schema: Record<string, unknown>): ValidateFunction | null {
  const key = stringify(schema)
  if (key.length > MAX_SCHEMA_CHARS) return null
  let v = compiled.get(key)
  if (v === undefined) {
    try {
      v = ajvOf().compile(schema)
    } catch {
      // An invalid schema is the client's problem: both answers are then only checked to be JSON.
      v = false
    }
    compiled.set(key, v)
  }
  return v === false ? null : v
}

/** Whether an answer's text satisfies the requirement: it parses as JSON and, with a schema, validates. */
export function satisfies (content: string | null | undefined, req: JsonRequirement): boolean {
  if (typeof content !== 'string') return false
  let v: unknown
  try {
    v = JSON.parse(content)
  } catch {
    return false
  }
  return req.validate === null || req.validate(v) === true
}
