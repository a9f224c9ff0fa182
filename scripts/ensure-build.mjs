// Builds dist/ when it is missing or older than any file in src/, so that `npm start`
// works right after `npm install` on a fresh clone (issue 2).
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'

function newest (dir) {
  let t = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs)
  }
  return t
}

const out = 'dist/cli.js'
if (!existsSync(out) || statSync(out).mtimeMs < newest('src')) {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  process.stderr.write('penumbra: building dist/ ...\n')
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { stdio: 'inherit' })
}
