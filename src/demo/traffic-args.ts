/** `--name value` of the command line, or the fallback. */
export function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1] ?? fallback
}

/**
 * The options every demo traffic script takes: --url, --admin, --requests, --concurrency;
 * exits 2 naming the script when the counts are not positive integers.
 */
export function trafficArgs (script: string, defaultRequests: number): { url: string, admin: string, total: number, concurrency: number } {
  const total = Number(arg('requests', String(defaultRequests)))
  const concurrency = Number(arg('concurrency', '8'))
  if (!Number.isInteger(total) || total < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
    process.stderr.write(`${script}: --requests and --concurrency must be positive integers\n`)
    process.exit(2)
  }
  return { url: arg('url', 'http://127.0.0.1:8080'), admin: arg('admin', 'http://127.0.0.1:9901'), total, concurrency }
}
