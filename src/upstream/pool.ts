import { Pool } from 'undici'

/** Options of one upstream connection pool. */
export interface UpstreamPoolOptions {
  url: string
  connections: number
  connectTimeoutMs: number
  keepAliveTimeoutMs?: number
  /** Upper bound of a response body in bytes (shadows); -1 for none. */
  maxResponseSize?: number
}

/**
 * One undici Pool per upstream: bounded connections (undici's default is unbounded), keep-alive,
 * pipelining 1 (long inference requests would block each other behind one socket). Redirects are
 * never followed: undici only does so with the redirect interceptor, which we do not compose.
 */
export function createUpstreamPool (opts: UpstreamPoolOptions): Pool {
  return new Pool(opts.url, {
    connections: opts.connections,
    pipelining: 1,
    keepAliveTimeout: opts.keepAliveTimeoutMs ?? 4000,
    connect: { timeout: opts.connectTimeoutMs },
    // Per-request headersTimeout/bodyTimeout are set at dispatch; these are only the defaults.
    headersTimeout: 300_000,
    bodyTimeout: 300_000,
    maxResponseSize: opts.maxResponseSize ?? -1,
    strictContentLength: true
  })
}
