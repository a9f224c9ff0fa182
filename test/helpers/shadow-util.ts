import type { IncomingMessage, ServerResponse } from 'node:http'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { Agent, request, type Dispatcher } from 'undici'
import type { Penumbra } from '../../src/index.js'
import { startPenumbra, startUpstream, urls, waitFor, type Handler, type Upstream } from './servers.js'

/** What a client got back from penumbra. */
export interface Got {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
  /** Date.now() when the last body byte arrived. */
  at: number
}

export function sha256 (b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex')
}

/** A fresh keep-alive agent per test (closed in t.after), so no test leaks sockets into another. */
export function newAgent (): Agent {
  return new Agent({ connections: 64, keepAliveTimeout: 10_000, pipelining: 1 })
}

/** One request, reading the whole response body. */
export async function call (dispatcher: Dispatcher, url: string, opts: {
  method?: Dispatcher.HttpMethod
  headers?: Record<string, string> | string[]
  body?: string | Buffer | AsyncIterable<Buffer> | null
} = {}): Promise<Got> {
  const res = await request(url, {
    dispatcher,
    method: opts.method ?? 'POST',
    headers: opts.headers,
    body: opts.body === undefined || opts.body === null ? null : (typeof opts.body === 'string' || Buffer.isBuffer(opts.body) ? opts.body : Readable.from(opts.body)),
    headersTimeout: 15_000,
    bodyTimeout: 15_000
  })
  const body = Buffer.from(await res.body.arrayBuffer())
  return { status: res.statusCode, headers: res.headers as Got['headers'], body, at: Date.now() }
}

/** Runs `fn` on 0..n-1 with at most `width` at once. */
export async function pool<T> (n: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++
      out[i] = await fn(i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(width, n) }, worker))
  return out
}

/** Value of one Prometheus sample from the text format (0 when absent). */
export function metricValue (text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels)
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const rest = line.slice(name.length)
    if (rest[0] !== '{' && rest[0] !== ' ') continue
    let labelPart = ''
    let value = rest
    if (rest[0] === '{') {
      const end = rest.indexOf('}')
      labelPart = rest.slice(1, end)
      value = rest.slice(end + 1)
    }
    const got = new Map<string, string>()
    for (const m of labelPart.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) got.set(m[1]!, m[2]!)
    if (want.every(([k, v]) => got.get(k) === v)) return Number(value.trim())
  }
  return 0
}

export async function scrape (app: Penumbra): Promise<string> {
  const res = await request(`${urls(app).admin}/metrics`)
  return await res.body.text()
}

/** GET /shadows/:name as the admin API returns it. */
export interface ShadowView {
  name: string
  url: string
  state: { enabled: boolean, sampleRate: number, inflight: number }
  counters: { mirrored: number, ok: number, error: number, timeout: number, skipped: Record<string, number> }
}

/** GET /shadows/:name (with the app's admin token, when it has one: reads need it then). */
export async function shadowView (app: Penumbra, name: string): Promise<ShadowView> {
  const token = app.config.admin.token
  const res = await request(`${urls(app).admin}/shadows/${name}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } })
  return await res.body.json() as ShadowView
}

/** The deterministic primary: a fixed binary-ish body and a few headers, echoing the body hash. */
export const PRIMARY_BODY = Buffer.concat([Buffer.from('{"predictions":[0.25,0.75],"pad":"'), Buffer.alloc(3000, 'x'), Buffer.from('"}')])
export const primaryHandler: Handler = (_req, res, _body) => {
  res.writeHead(200, { 'content-type': 'application/json', 'x-model': 'primary', 'content-length': PRIMARY_BODY.length })
  res.end(PRIMARY_BODY)
}

/**
 * Shadow behaviours with cleanup: every timer and held response is tracked, so `dispose()` frees
 * them and no test keeps the event loop alive. `responded` records when each answer was sent.
 */
export class ShadowBehaviour {
  readonly responded: number[] = []
  readonly held = new Set<ServerResponse>()
  readonly timers = new Set<NodeJS.Timeout>()
  closedEarly = 0

  json (status = 200, text = '{"predictions":[0.25,0.75]}'): Handler {
    return (_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
      res.end(text)
      this.responded.push(Date.now())
    }
  }

  delayed (ms: number): Handler {
    return (_req, res) => {
      this.held.add(res)
      const t = setTimeout(() => {
        this.timers.delete(t)
        this.held.delete(res)
        if (res.destroyed) return
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end('{"predictions":[0.25,0.75]}')
        this.responded.push(Date.now())
      }, ms)
      this.timers.add(t)
      res.on('close', () => { if (!res.writableFinished) this.closedEarly++ })
    }
  }

  hang (): Handler {
    return (_req, res) => {
      this.held.add(res)
      res.on('close', () => { this.held.delete(res); this.closedEarly++ })
    }
  }

  reset (): Handler {
    return (req) => { req.socket.destroy() }
  }

  /** Sends the head and the first bytes of a longer body, then nothing more (a stuck stream). */
  stallBody (): Handler {
    const hold = this.hang()
    return (req, res, body) => {
      hold(req, res, body)
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 1000 })
      res.write('{"predictions":[')
    }
  }

  /** Streams `bytes` of JSON-ish filler, honouring backpressure, until done or cut off. */
  huge (bytes: number): Handler {
    return (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': bytes })
      const chunk = Buffer.alloc(64 * 1024, 'a')
      let sent = 0
      const pump = (): void => {
        while (sent < bytes && !res.destroyed) {
          const n = Math.min(chunk.length, bytes - sent)
          sent += n
          if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) { res.once('drain', pump); return }
        }
        if (!res.destroyed) { res.end(); this.responded.push(Date.now()) }
      }
      res.on('close', () => { if (!res.writableFinished) this.closedEarly++ })
      pump()
    }
  }

  dispose (): void {
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    for (const res of this.held) res.destroy()
    this.held.clear()
  }
}

/** A penumbra test rig: primary, shadow upstreams, penumbra, agent; `close()` stops it all. */
export interface Rig {
  app: Penumbra
  primary: Upstream
  shadows: Upstream[]
  agent: Agent
  proxy: string
  admin: string
  close (): Promise<void>
}

/**
 * Starts a primary (deterministic), `shadowCount` shadow upstreams, and penumbra with the shadows
 * from `shadows(urls)`; a short shutdown deadline keeps teardown fast.
 */
export async function rig (opts: {
  shadowCount?: number
  shadows?: (shadowUrls: string[]) => Array<Record<string, unknown>>
  extra?: Record<string, unknown>
  shadowHandler?: Handler
} = {}): Promise<Rig> {
  const primary = await startUpstream(primaryHandler)
  const shadows: Upstream[] = []
  for (let i = 0; i < (opts.shadowCount ?? 1); i++) shadows.push(await startUpstream(opts.shadowHandler))
  const shadowCfg = opts.shadows?.(shadows.map((s) => s.url)) ?? shadows.map((s, i) => ({ name: `s${i}`, url: s.url }))
  const app = await startPenumbra({
    primary: { url: primary.url },
    shadows: shadowCfg,
    shutdown: { timeoutMs: 200 },
    ...opts.extra
  })
  const agent = newAgent()
  const u = urls(app)
  return {
    app,
    primary,
    shadows,
    agent,
    proxy: u.proxy,
    admin: u.admin,
    async close () {
      await agent.close().catch(() => {})
      await app.stop()
      await primary.close()
      for (const s of shadows) await s.close()
    }
  }
}

/** Headers of a response without the ones that differ per exchange by nature. */
export function stableHeaders (h: Got['headers']): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {}
  for (const [k, v] of Object.entries(h)) if (k !== 'date' && k !== 'keep-alive') out[k] = v
  return out
}

/** The request id of a seen upstream request. */
export function rid (seen: { headers: IncomingMessage['headers'] }): string {
  return String(seen.headers['x-request-id'])
}

/**
 * Barrier for "the shadow never received it" assertions: every mirrored call has ended. The
 * decision to mirror and the send happen while the client's request is handled (so they are
 * final once the client has its answer); a call counts once its shadow answered or failed. After
 * this, what each shadow's upstream saw is exactly what penumbra sent it: no sleep needed.
 */
export async function shadowsSettled (app: Penumbra, timeoutMs = 5000): Promise<void> {
  const token = app.config.admin.token
  await waitFor(async () => {
    const res = await request(`${urls(app).admin}/shadows`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } })
    const list = await res.body.json() as ShadowView[]
    return list.every((s) => s.state.inflight === 0 && s.counters.mirrored === s.counters.ok + s.counters.error + s.counters.timeout)
  }, timeoutMs, 'every mirrored call to end')
}
