import { spawn, type ChildProcess } from 'node:child_process'
import { createServer as createNetServer, connect, type Socket, type AddressInfo, type Server as NetServer } from 'node:net'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Readable } from 'node:stream'
import { createHash, randomBytes } from 'node:crypto'
import { sleep } from './common.js'

/** The repository root (this file runs from .build/test/helpers/). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
export const CLI = join(ROOT, 'dist', 'cli.js')

export { freePort, sleep } from './common.js'

/** Resolves 'open' when something accepts on 127.0.0.1:port, 'refused' when not. */
export function probePort (port: number, timeoutMs = 1000): Promise<'open' | 'refused' | 'timeout'> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    const t = setTimeout(() => { s.destroy(); resolve('timeout') }, timeoutMs)
    s.once('connect', () => { clearTimeout(t); s.destroy(); resolve('open') })
    s.once('error', () => { clearTimeout(t); resolve('refused') })
  })
}

export { tempDir } from './common.js'

export function writeFile (dir: string, name: string, text: string): string {
  const p = join(dir, name)
  writeFileSync(p, text)
  return p
}

/** A finished CLI run. */
export interface CliResult { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/** Runs the CLI to completion (bounded: killed after timeoutMs). */
export function runCli (args: string[], opts: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 10_000)
    child.on('close', (code, signal) => { clearTimeout(t); resolve({ code, signal, stdout, stderr }) })
  })
}

/** A running penumbra child process. */
export class PenumbraChild {
  readonly child: ChildProcess
  stdout = ''
  stderr = ''
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  constructor (child: ChildProcess) {
    this.child = child
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { this.stdout += d })
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { this.stderr += d })
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  }

  get pid (): number { return this.child.pid! }
  get running (): boolean { return this.child.exitCode === null && this.child.signalCode === null }

  /** Waits for the exit, SIGKILLing after timeoutMs (then the result says signal SIGKILL). */
  async waitExit (timeoutMs = 10_000): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
    const t = setTimeout(() => { if (this.running) this.child.kill('SIGKILL') }, timeoutMs)
    const r = await this.exited
    clearTimeout(t)
    return r
  }

  /** Last resort for t.after: kill if still running. */
  async kill (): Promise<void> {
    if (this.running) {
      this.child.kill('SIGKILL')
      await this.exited
    }
  }

  /** JSON lines of stdout that parse. */
  jsonLines (): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = []
    for (const line of this.stdout.split('\n')) {
      if (line.trim() === '') continue
      try { out.push(JSON.parse(line) as Record<string, unknown>) } catch { /* not JSON */ }
    }
    return out
  }
}

/**
 * Spawns `node dist/cli.js --config <file> [...extra]` and waits until the proxy port accepts
 * (and the admin's /healthz answers when adminPort is given).
 */
export async function spawnPenumbra (configFile: string, opts: { port: number, adminPort?: number, extra?: string[], env?: NodeJS.ProcessEnv, readyTimeoutMs?: number }): Promise<PenumbraChild> {
  const child = new PenumbraChild(spawn(process.execPath, [CLI, '--config', configFile, ...(opts.extra ?? [])], {
    cwd: ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe']
  }))
  const until = Date.now() + (opts.readyTimeoutMs ?? 10_000)
  while (Date.now() < until) {
    if (!child.running) throw new Error(`penumbra exited early: ${child.child.exitCode ?? child.child.signalCode}\nstderr: ${child.stderr}\nstdout: ${child.stdout}`)
    if (await probePort(opts.port, 500) === 'open') {
      if (opts.adminPort === undefined) return child
      try {
        const r = await fetch(`http://127.0.0.1:${opts.adminPort}/healthz`)
        await r.arrayBuffer()
        if (r.status === 200) return child
      } catch { /* not yet */ }
    }
    await sleep(25)
  }
  await child.kill()
  throw new Error(`penumbra did not start listening on ${opts.port}\nstderr: ${child.stderr}`)
}

/** YAML for a child config (everything on 127.0.0.1). */
export function childConfigYaml (o: { port: number, adminPort: number, primary: string, extra?: string, log?: string, timeoutMs?: number, shutdownMs?: number }): string {
  return [
    `listen: { host: 127.0.0.1, port: ${o.port} }`,
    `admin: { host: 127.0.0.1, port: ${o.adminPort} }`,
    `primary: { url: "${o.primary}"${o.timeoutMs !== undefined ? `, timeoutMs: ${o.timeoutMs}` : ''} }`,
    `log: ${o.log ?? '{ level: warn, access: false }'}`,
    ...(o.shutdownMs !== undefined ? [`shutdown: { timeoutMs: ${o.shutdownMs} }`] : []),
    o.extra ?? ''
  ].join('\n') + '\n'
}

/** Peak and current resident set of a process, in bytes (Linux /proc). */
export function procMemory (pid: number): { rss: number, hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)
    return m === null ? 0 : Number(m[1]) * 1024
  }
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') }
}

/** A raw HTTP/1.1 exchange over one TCP connection: write bytes, collect everything until close or idle. */
export function rawExchange (port: number, data: string | Buffer, opts: { idleMs?: number, timeoutMs?: number, until?: (received: string) => boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port })
    let got = ''
    let idle: NodeJS.Timeout | undefined
    const done = (): void => { clearTimeout(idle); clearTimeout(hard); s.destroy(); resolve(got) }
    const hard = setTimeout(done, opts.timeoutMs ?? 5000)
    s.setEncoding('latin1')
    s.on('data', (d: string) => {
      got += d
      if (opts.until?.(got) === true) { done(); return }
      clearTimeout(idle)
      idle = setTimeout(done, opts.idleMs ?? 300)
    })
    s.on('end', done)
    s.on('close', done)
    s.on('error', (err) => { if (got === '') reject(err); else done() })
    s.write(data)
  })
}

/** Parses the first response head of a raw exchange. */
export function parseHead (raw: string): { status: number, reason: string, headers: Array<[string, string]>, body: string } {
  const end = raw.indexOf('\r\n\r\n')
  const head = end < 0 ? raw : raw.slice(0, end)
  const [statusLine, ...lines] = head.split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine ?? '')
  return {
    status: m === null ? 0 : Number(m[1]),
    reason: m?.[2] ?? '',
    headers: lines.map((l) => { const i = l.indexOf(':'); return [l.slice(0, i).trim(), l.slice(i + 1).trim()] as [string, string] }),
    body: end < 0 ? '' : raw.slice(end + 4)
  }
}

/** A deterministic stream of `total` bytes (64 KiB chunks from a random pool, each stamped with its index). */
export function generated (total: number, seed: Buffer = randomBytes(1 << 16)): { stream: (onChunk?: (bytes: number) => void) => Readable, sha256: string } {
  const chunk = seed.length
  const make = (i: number): Buffer => {
    const b = Buffer.from(seed)
    b.writeUInt32BE(i, 0)
    return b.subarray(0, Math.min(chunk, total - i * chunk))
  }
  const h = createHash('sha256')
  for (let i = 0; i * chunk < total; i++) h.update(make(i))
  return {
    sha256: h.digest('hex'),
    stream: (onChunk) => {
      let i = 0
      return new Readable({
        highWaterMark: chunk,
        read () {
          if (i * chunk >= total) { this.push(null); return }
          const b = make(i++)
          onChunk?.(b.length)
          this.push(b)
        }
      })
    }
  }
}

/** A plain node:http server (for upstreams that need more than the recording helper). */
export async function httpServer (handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server & { port: number, url: string, stop: () => Promise<void> }> {
  const s = createServer(handler)
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as AddressInfo).port
  return Object.assign(s, {
    port,
    url: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => { s.close(() => resolve()); s.closeAllConnections() })
  })
}

/** A raw TCP "upstream": onSocket gets every accepted connection. */
export async function tcpServer (onSocket: (s: Socket) => void): Promise<NetServer & { port: number, url: string, stop: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  const s = createNetServer((sock) => {
    sockets.add(sock)
    sock.on('close', () => sockets.delete(sock))
    sock.on('error', () => {})
    onSocket(sock)
  })
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as AddressInfo).port
  return Object.assign(s, {
    port,
    url: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => { for (const k of sockets) k.destroy(); s.close(() => resolve()) })
  })
}

/**
 * A URL whose port nothing listens on. The port is below Linux's ephemeral range (32768 and up),
 * so no listen(0) can be handed it afterwards. A freshly freed ephemeral port can be: if the
 * penumbra started next gets it, its "unreachable" primary answers and /readyz says 200. One CI
 * run failed that way, most likely for this reason.
 */
export async function closedPortUrl (): Promise<string> {
  for (let port = 1; port < 1024; port++) if (await probePort(port, 500) === 'refused') return `http://127.0.0.1:${port}`
  throw new Error('closedPortUrl: every port below 1024 on 127.0.0.1 accepts connections')
}
