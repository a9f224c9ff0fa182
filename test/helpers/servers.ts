import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createHash } from 'node:crypto'
import { Penumbra } from '../../src/index.js'
import { validateConfig } from '../../src/config/load.js'
import type { Config } from '../../src/config/schema.js'
import { createLogger } from '../../src/log/logger.js'

/** What an upstream test server saw of one request. */
export interface Seen {
  method: string
  url: string
  headers: IncomingMessage['headers']
  rawHeaders: string[]
  body: Buffer
  sha256: string
  at: number
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void

/** A real loopback HTTP server that records every request and answers with `handler`. */
export class Upstream {
  readonly server: Server
  readonly seen: Seen[] = []
  handler: Handler

  constructor (handler: Handler) {
    this.handler = handler
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const body = Buffer.concat(chunks)
        this.seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          rawHeaders: req.rawHeaders,
          body,
          sha256: createHash('sha256').update(body).digest('hex'),
          at: Date.now()
        })
        this.handler(req, res, body)
      })
      req.on('error', () => {})
    })
  }

  async listen (): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    return this
  }

  get port (): number {
    return (this.server.address() as AddressInfo).port
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  close (): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
  }
}

/** Starts an upstream that answers JSON (or the given handler). */
export function startUpstream (handler?: Handler): Promise<Upstream> {
  return new Upstream(handler ?? ((_req, res, body) => {
    const text = JSON.stringify({ ok: true, bytes: body.length })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  })).listen()
}

/** Validates a partial config (listen/admin on port 0, silent logs unless given). */
export function testConfig (partial: Record<string, unknown>): Config {
  return validateConfig({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    log: { level: 'silent', access: false },
    ...partial
  })
}

/** Starts penumbra in-process with a partial config; the caller stops it. */
export async function startPenumbra (partial: Record<string, unknown>): Promise<Penumbra> {
  const config = testConfig(partial)
  const app = new Penumbra(config, { logger: createLogger({ level: config.log.level, sync: true }) })
  await app.start()
  return app
}

/** `http://127.0.0.1:<port>` of the proxy and the admin listener. */
export function urls (app: Penumbra): { proxy: string, admin: string } {
  return { proxy: `http://127.0.0.1:${app.port}`, admin: `http://127.0.0.1:${app.adminPort}` }
}

/** Resolves when `check` is true, polling every 10 ms, or rejects after `timeoutMs`. */
export { waitFor } from './common.js'
