// `npm run bench:docs`: regenerates docs/benchmarks.md from bench/results/latest.md.
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { benchmarksPage } from './lib/report.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
writeFileSync(join(ROOT, 'docs', 'benchmarks.md'), benchmarksPage(readFileSync(join(ROOT, 'bench', 'results', 'latest.md'), 'utf8')))
process.stdout.write('wrote docs/benchmarks.md\n')
