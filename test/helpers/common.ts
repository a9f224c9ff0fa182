// The one home of the generic test helpers: every other helper file and test imports these.
import { createServer, type AddressInfo } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Waits ms. For fake servers that simulate a slow model, never to order or settle a test. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A port that was free a moment ago (listen on 0, close). For child processes that need a fixed port. */
export async function freePort (): Promise<number> {
  const s = createServer()
  await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(0, '127.0.0.1', resolve) })
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

/** A temp dir (named by `prefix`) removed when the test (or suite) ends: `t.after`, `after`. */
export function tempDir (t: { after: (fn: () => void) => void }, prefix = 'penumbra-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Polls `check` every 10 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor (check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  await waitForValue(async () => (await check()) ? true : undefined, timeoutMs, what, 10)
}

/**
 * Polls `fn` until it returns a value other than undefined (thrown errors count as not yet);
 * throws naming `what`, and the last error, after `timeoutMs`. Same argument order as waitFor.
 */
export async function waitForValue<T> (fn: () => Promise<T | undefined>, timeoutMs: number, what: string, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown = null
  for (;;) {
    try {
      const v = await fn()
      if (v !== undefined) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === null ? '' : `: ${(last as Error).message}`}`)
    await sleep(everyMs)
  }
}
