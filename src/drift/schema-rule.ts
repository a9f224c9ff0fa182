import { createRequire } from 'node:module'
import type { Ajv as AjvT, ValidateFunction } from 'ajv'
import stringify from 'fast-json-stable-stringify'

// The `schema` assertion rule: JSON Schema validation with ajv, compiled once per distinct schema
// and process (at config load; the cache makes the second compile, when the monitor is built
// from the validated config, a lookup).

const require = createRequire(import.meta.url)
let ajv: AjvT | null = null

function ajvOf (): AjvT {
  // Loaded only when a config has a schema rule (ajv costs ~11 MB of RSS). Strict about the
  // schema itself (an unknown keyword is a typo the operator should hear of at load), lenient
  // about types and formats, which ajv would otherwise only log.
  if (ajv === null) {
    const { Ajv } = require('ajv') as { Ajv: new (o: object) => AjvT }
    ajv = new Ajv({ strict: true, strictTypes: false, strictTuples: false, strictRequired: false, validateFormats: false, allowUnionTypes: true, allErrors: false })
  }
  return ajv
}

const compiled = new Map<string, { validate: ValidateFunction | null, error: string | null }>()

/** The compiled validator of a schema, or why it does not compile. Cached by canonical text. */
export function compileSchemaRule (schema: Record<string, unknown>): { validate: ValidateFunction | null, error: string | null } {
  const key = stringify(schema)
  let c = compiled.get(key)
  if (c === undefined) {
    try {
      c = { validate: ajvOf().compile(schema), error: null }
    } catch (err) {
      c = { validate: null, error: (err as Error).message }
    }
    if (compiled.size < 1000) compiled.set(key, c)
  }
  return c
}

/** The first validation error of the last call, as one short line. */
export function firstError (v: ValidateFunction): string {
  const e = v.errors?.[0]
  if (e == null) return 'does not match the schema'
  return `${e.instancePath === '' ? '(value)' : e.instancePath} ${e.message ?? 'is invalid'}`
}
