import { pino, type Logger } from 'pino'

export type { Logger }

/** Header names whose values never reach a log line, whatever the config says. */
const ALWAYS_REDACTED = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']

/**
 * JSON logs on stdout (pino). Writes are asynchronous (sonic-boom buffers up to 4 KiB) so a log
 * line costs the request path no syscall; `flush()` runs at shutdown. Auth headers are redacted
 * wherever they appear under `headers`, plus the configured paths.
 */
export function createLogger (opts: { level: string, redact?: string[], sync?: boolean, destination?: number | string }): Logger {
  const paths = [
    ...ALWAYS_REDACTED.map((h) => `*.headers["${h}"]`),
    ...ALWAYS_REDACTED.map((h) => `headers["${h}"]`),
    ...(opts.redact ?? [])
  ]
  const logger = pino({
    level: opts.level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths, censor: '[REDACTED]' },
    formatters: { level: (label) => ({ level: label }) }
  }, pino.destination({ dest: opts.destination ?? 1, sync: opts.sync ?? false, minLength: opts.sync === true ? 0 : 4096 }))
  // The 4 KiB buffer batches writes under load; at low traffic a line must not wait for it.
  if (opts.sync !== true) setInterval(() => logger.flush(), 1000).unref()
  return logger
}
