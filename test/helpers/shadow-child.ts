import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { request } from 'undici'
import { waitFor } from './servers.js'
import { freePort } from './common.js'

/** dist/cli.js of this checkout (the test runs from .build/test/helpers/). */
export const CLI = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../dist/cli.js')

export { freePort } from './common.js'

/** A penumbra CLI child process on a temp YAML config file. */
export class Child {
  readonly dir: string
  readonly file: string
  readonly proc: ChildProcess
  stdout = ''
  stderr = ''
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null, at: number }>
  exitInfo: { code: number | null, signal: NodeJS.Signals | null, at: number } | null = null

  constructor (readonly proxyPort: number, readonly adminPort: number, config: Record<string, unknown>) {
    this.dir = mkdtempSync(join(tmpdir(), 'penumbra-shadow-'))
    this.file = join(this.dir, 'penumbra.yaml')
    this.write(config)
    this.proc = spawn(process.execPath, [CLI, '--config', this.file], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => { this.stdout += d })
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => { this.stderr += d })
    this.exited = new Promise((resolveExit) => {
      this.proc.on('exit', (code, signal) => {
        this.exitInfo = { code, signal, at: Date.now() }
        resolveExit(this.exitInfo)
      })
    })
  }

  get proxy (): string { return `http://127.0.0.1:${this.proxyPort}` }
  get admin (): string { return `http://127.0.0.1:${this.adminPort}` }
  get output (): string { return this.stdout + this.stderr }

  write (config: Record<string, unknown>): void {
    writeFileSync(this.file, stringify({
      listen: { host: '127.0.0.1', port: this.proxyPort },
      admin: { host: '127.0.0.1', port: this.adminPort },
      log: { level: 'info', access: false },
      ...config
    }))
  }

  writeRaw (text: string): void {
    writeFileSync(this.file, text)
  }

  async ready (timeoutMs = 10_000): Promise<void> {
    await waitFor(async () => {
      if (this.exitInfo !== null) throw new Error(`penumbra exited early (${JSON.stringify(this.exitInfo)}): ${this.output}`)
      try {
        const res = await request(`${this.admin}/healthz`)
        await res.body.text()
        return res.statusCode === 200
      } catch {
        return false
      }
    }, timeoutMs, 'penumbra child to serve')
  }

  signal (sig: NodeJS.Signals): void {
    if (this.exitInfo === null) this.proc.kill(sig)
  }

  /** Kills the child (by its pid) if still running and removes the temp dir. */
  async dispose (): Promise<void> {
    if (this.exitInfo === null) {
      this.proc.kill('SIGKILL')
      await this.exited
    }
    rmSync(this.dir, { recursive: true, force: true })
  }
}

export async function startChild (config: Record<string, unknown>): Promise<Child> {
  const c = new Child(await freePort(), await freePort(), config)
  await c.ready()
  return c
}
