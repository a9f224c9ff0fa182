import { createServer as createNetServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'
import { Upstream, type Handler } from './servers.js'

/**
 * A recording upstream behind a TCP front that logs every byte it receives, in arrival order,
 * before any HTTP parsing: what a smuggled or half-forwarded request would leave behind shows up
 * here even when the upstream's own parser would hide it. `seen` is the parsed view.
 */
export class ByteLogUpstream {
  readonly inner: Upstream
  readonly front: Server
  readonly chunks: Buffer[] = []
  readonly #sockets = new Set<Socket>()
  /** Connections accepted by the front (one per upstream socket penumbra opened). */
  connections = 0
  /** Connections still open. */
  get open (): number { return this.#sockets.size }

  constructor (inner: Upstream) {
    this.inner = inner
    this.front = createNetServer((client) => {
      this.connections++
      this.#sockets.add(client)
      const back = connect({ host: '127.0.0.1', port: inner.port })
      const closeBoth = (): void => { this.#sockets.delete(client); client.destroy(); back.destroy() }
      client.on('data', (d: Buffer) => this.chunks.push(Buffer.from(d)))
      client.pipe(back).pipe(client)
      client.on('error', closeBoth)
      back.on('error', closeBoth)
      client.on('close', closeBoth)
      back.on('close', closeBoth)
    })
  }

  static async start (handler?: Handler): Promise<ByteLogUpstream> {
    const inner = await new Upstream(handler ?? okHandler).listen()
    const u = new ByteLogUpstream(inner)
    await new Promise<void>((resolve) => u.front.listen(0, '127.0.0.1', resolve))
    return u
  }

  get seen (): Upstream['seen'] { return this.inner.seen }
  get url (): string { return `http://127.0.0.1:${(this.front.address() as AddressInfo).port}` }
  /** Every byte received so far, as latin1 text. */
  get text (): string { return Buffer.concat(this.chunks).toString('latin1') }

  async close (): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    await new Promise<void>((resolve) => this.front.close(() => resolve()))
    await this.inner.close()
  }
}

const okHandler: Handler = (req, res, body) => {
  const text = JSON.stringify({ url: req.url, bytes: body.length })
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** Every response head (status codes, in order) in a raw HTTP/1.1 byte stream. */
export function statusCodes (raw: string): number[] {
  return [...raw.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]))
}

/** Opens a raw connection, writes `data`, resolves with everything received once the server closes it. */
export function untilClosed (port: number, data: string | Buffer, timeoutMs = 10_000): Promise<{ text: string, closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    let text = ''
    const t = setTimeout(() => { s.destroy(); resolve({ text, closed: false }) }, timeoutMs)
    s.setEncoding('latin1')
    s.on('data', (d: string) => { text += d })
    s.on('error', () => {})
    s.on('close', () => { clearTimeout(t); resolve({ text, closed: true }) })
    s.write(data)
  })
}
