// Child-process bookkeeping. Every process the bench starts goes through here so that one call
// (or a signal, or an exception, or plain process exit) stops all of them. Children are started
// `detached`, i.e. as leaders of their own process group, so that stopping the group also stops
// their own children (cluster workers of `penumbra --workers 2`, nginx workers).
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'

export interface Managed {
  name: string
  proc: ChildProcess
  pid: number
  /** Last ~8 KB of stdout+stderr, for error messages. */
  output: () => string
  /** Resolves when the process has exited (never rejects). */
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  isRunning: () => boolean
}

const TAIL = 8192
const children = new Set<Managed>()

export interface SpawnOptions {
  /** Give the child an IPC channel (Node entries that report their port with process.send). */
  ipc?: boolean
  env?: NodeJS.ProcessEnv
}

export function spawnManaged (name: string, command: string, args: string[], opts: SpawnOptions = {}): Managed {
  const proc = spawn(command, args, {
    detached: true,
    stdio: opts.ipc === true ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? process.env
  })
  let tail = ''
  const keep = (chunk: Buffer): void => {
    tail += chunk.toString('utf8')
    if (tail.length > TAIL * 2) tail = tail.slice(-TAIL)
  }
  proc.stdout?.on('data', keep)
  proc.stderr?.on('data', keep)
  let running = true
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => { running = false; resolve({ code, signal }) })
    proc.once('error', (err) => { running = false; keep(Buffer.from(`spawn failed: ${err.message}\n`)); resolve({ code: null, signal: null }) })
  })
  const m: Managed = { name, proc, pid: proc.pid ?? -1, output: () => tail.slice(-TAIL), exited, isRunning: () => running }
  children.add(m)
  void exited.then(() => children.delete(m))
  return m
}

function signalGroup (m: Managed, signal: NodeJS.Signals): void {
  if (m.pid <= 0) return
  try { process.kill(-m.pid, signal) } catch { /* group already gone */ }
  try { process.kill(m.pid, signal) } catch { /* already gone */ }
}

/** SIGTERM the process group, SIGKILL it if it is still there after `graceMs`. */
export async function stopManaged (m: Managed, graceMs = 3000): Promise<void> {
  if (!m.isRunning()) { signalGroup(m, 'SIGKILL'); return } // reap stragglers in its group
  signalGroup(m, 'SIGTERM')
  const timer = new Promise<'timeout'>((resolve) => setTimeout(resolve, graceMs, 'timeout').unref())
  if (await Promise.race([m.exited.then(() => 'exited' as const), timer]) === 'timeout') signalGroup(m, 'SIGKILL')
  await m.exited
  signalGroup(m, 'SIGKILL') // grandchildren that ignored SIGTERM (e.g. a worker mid-drain)
}

/** Pids of every running child (each the leader of its own group). */
export function managedPids (): number[] {
  return [...children].filter((m) => m.isRunning() && m.pid > 0).map((m) => m.pid)
}

export async function stopAll (): Promise<void> {
  await Promise.all([...children].map((m) => stopManaged(m)))
}

/** Last resort on process exit: no time for grace, kill whatever is left synchronously. */
function killAllNow (): void {
  for (const m of children) signalGroup(m, 'SIGKILL')
}

let installed = false
/** Ctrl-C / SIGTERM / exit: stop every child before the bench goes away. */
export function installCleanupHandlers (log: (msg: string) => void): void {
  if (installed) return
  installed = true
  process.on('exit', killAllNow)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      log(`\n${sig}: stopping ${children.size} child process(es)...`)
      const hardExit = setTimeout(() => { killAllNow(); process.exit(sig === 'SIGINT' ? 130 : 143) }, 5000)
      hardExit.unref()
      void stopAll().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143))
    })
  }
}

/** Waits for `{type: 'ready', port}` over IPC; rejects with the child's output if it dies first. */
export function waitForIpcReady (m: Managed, timeoutMs = 15_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${m.name} did not report ready within ${timeoutMs} ms\n${indent(m.output())}`)), timeoutMs)
    const onMessage = (msg: unknown): void => {
      if (typeof msg === 'object' && msg !== null && (msg as { type?: unknown }).type === 'ready') {
        const port = (msg as { port?: unknown }).port
        if (typeof port === 'number' && port > 0) { cleanup(); resolve(port) }
      }
    }
    const fail = (err: Error): void => { cleanup(); reject(err) }
    const cleanup = (): void => { clearTimeout(timer); m.proc.off('message', onMessage) }
    m.proc.on('message', onMessage)
    void m.exited.then(({ code, signal }) => fail(new Error(`${m.name} exited (code ${code}, signal ${signal}) before it was ready\n${indent(m.output())}`)))
  })
}

export function indent (text: string): string {
  const t = text.trim()
  return t === '' ? '  (no output)' : t.split('\n').slice(-30).map((l) => `  | ${l}`).join('\n')
}

const handedOut = new Set<number>()
/**
 * A free loopback port, for processes that need a fixed one (penumbra's listen/admin ports in
 * cluster mode, nginx). Bind :0, read the port, close. A port handed out once is never handed
 * out again, so two configs of the same run cannot collide; another program could still grab it
 * in between, in which case the child fails and its "address in use" error is reported.
 */
export async function freePort (): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer()
      s.once('error', reject)
      s.listen(0, '127.0.0.1', () => {
        const a = s.address()
        const p = typeof a === 'object' && a !== null ? a.port : 0
        s.close(() => resolve(p))
      })
    })
    if (!handedOut.has(port)) { handedOut.add(port); return port }
  }
  throw new Error('could not find a free port on 127.0.0.1')
}

/** A clear message when a child failed because its port was taken. */
export function explainStartFailure (name: string, output: string): string {
  // penumbra: "listen.port: 127.0.0.1:8080 is already in use (EADDRINUSE)";
  // nginx: "bind() to 127.0.0.1:8080 failed (98: Address already in use)"
  const m = /:(\d{2,5})\b[^\n]*(?:already in use|EADDRINUSE)/i.exec(output)
  if (m !== null) return `${name}: port ${m[1]} on 127.0.0.1 is taken by another program; stop it or rerun (ports are picked fresh each run)`
  if (/EADDRINUSE|address already in use/i.test(output)) return `${name}: a port on 127.0.0.1 is taken by another program; stop it or rerun`
  return `${name} failed to start`
}
