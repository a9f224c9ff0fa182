import { readFileSync } from 'node:fs'
import { extname } from 'node:path'
import { parse as parseYaml, YAMLParseError } from 'yaml'
import { backend, configSchema, type Config } from './schema.js'
import { PenumbraError } from '../errors.js'
import { didYouMean, knownKeys } from './did-you-mean.js'

/** An invalid config: every problem, each as `path: reason`. */
export class ConfigError extends PenumbraError {
  readonly problems: string[]
  constructor (problems: string[]) {
    super('PENUMBRA_INVALID_CONFIG', `invalid config:\n  ${problems.join('\n  ')}`)
    this.problems = problems
  }
}

function formatPath (path: ReadonlyArray<PropertyKey>): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else out += out === '' ? String(seg) : `.${String(seg)}`
  }
  return out === '' ? '(root)' : out
}

/** Validates a parsed document; throws ConfigError listing every problem with its key path. */
export function validateConfig (doc: unknown): Config {
  const result = configSchema.safeParse(doc ?? {})
  if (result.success) return result.data
  const problems: string[] = []
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      // The legacy `primary: {url, …}` is checked inside a transform: its keys are a backend's.
      const known = issue.path.length === 1 && issue.path[0] === 'primary' ? knownKeys(backend, []) : knownKeys(configSchema, issue.path)
      for (const key of issue.keys) {
        const hint = didYouMean(key, known)
        problems.push(`${formatPath([...issue.path, key])}: unknown key${hint !== null ? ` (did you mean \`${hint}\`?)` : ''}`)
      }
      continue
    }
    let message = issue.message
    if (issue.code === 'invalid_type' && /received undefined/.test(message)) message = 'is required'
    problems.push(`${formatPath(issue.path)}: ${message}`)
  }
  throw new ConfigError(problems)
}

/**
 * The admin token from its sources, strongest first: the environment variable
 * PENUMBRA_ADMIN_TOKEN, `admin.tokenFile` (a mounted Secret), `admin.token`. A token file that
 * cannot be read, or holds fewer than 8 characters, is a config error naming the key. Applied by
 * {@link loadConfigFile} and by an embedded Penumbra; validateConfig stays free of I/O, so a config
 * can be validated away from the machine that holds its Secret.
 */
export function resolveAdminToken (cfg: Config, env: NodeJS.ProcessEnv): Config {
  const fromEnv = env.PENUMBRA_ADMIN_TOKEN
  let token = cfg.admin.token
  if (fromEnv !== undefined && fromEnv !== '') {
    token = fromEnv.trim()
    if (token.length < 8) throw new ConfigError(['PENUMBRA_ADMIN_TOKEN: must be at least 8 characters'])
  } else if (cfg.admin.tokenFile !== null) {
    try {
      token = readFileSync(cfg.admin.tokenFile, 'utf8').trim()
    } catch (err) {
      throw new ConfigError([`admin.tokenFile: cannot read ${cfg.admin.tokenFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`])
    }
    if (token.length < 8) throw new ConfigError([`admin.tokenFile: ${cfg.admin.tokenFile} must hold a token of at least 8 characters`])
  }
  // Chaos can fault client traffic: who may start and stop it must be known (issue #20).
  if (cfg.chaos?.enabled === true && token === null) throw new ConfigError(['chaos.enabled: chaos needs the admin token (admin.token, admin.tokenFile or PENUMBRA_ADMIN_TOKEN)'])
  return token === cfg.admin.token ? cfg : { ...cfg, admin: { ...cfg.admin, token } }
}

/** Parses YAML or JSON text (by extension; YAML otherwise, which also accepts JSON). */
export function parseConfigText (text: string, file: string): unknown {
  if (extname(file).toLowerCase() === '.json') {
    try {
      return JSON.parse(text)
    } catch (err) {
      throw new ConfigError([`${file}: invalid JSON (${(err as Error).message})`])
    }
  }
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true })
  } catch (err) {
    const e = err as YAMLParseError
    const where = e.linePos?.[0] !== undefined ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : ''
    throw new ConfigError([`${file}: YAML syntax error${where}: ${e.message.split('\n')[0]}`])
  }
}

/** Reads, parses and validates a config file. */
export function loadConfigFile (file: string): Config {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new ConfigError([`${file}: cannot read config file (${code === 'ENOENT' ? 'no such file' : code ?? (err as Error).message})`])
  }
  return resolveAdminToken(validateConfig(parseConfigText(text, file)), process.env)
}

/** The effective config with secrets replaced, for `GET /config` and `--check`. */
export function redactConfig (config: Config): unknown {
  const copy = structuredClone(config) as Config
  if (copy.admin.token !== null) (copy.admin as { token: string | null }).token = '[REDACTED]'
  for (const s of copy.shadows) redactShadowSecrets(s)
  copy.feedback.redis.url = redactUrlPassword(copy.feedback.redis.url)
  return copy
}

/**
 * Replaces every `headers.set` value of a shadow config (in place) with `[REDACTED]`: they are
 * typically the candidate's credentials, and a name-based guess misses some (x-auth, x-api-password).
 */
export function redactShadowSecrets (s: { headers: { set: Record<string, string> } }): void {
  for (const name of Object.keys(s.headers.set)) s.headers.set[name] = '[REDACTED]'
}

/** A URL with its password (if any) replaced by `[REDACTED]` (redis://user:secret@host). */
function redactUrlPassword (url: string): string {
  if (!URL.canParse(url)) return url
  const u = new URL(url)
  if (u.password === '') return url
  u.password = 'REDACTED'
  return u.toString()
}
