/** The live status page served at admin `GET /` (issue #5 builds it out). */
export function statusPageHtml (): string {
  return '<!doctype html><meta charset="utf-8"><title>penumbra</title><h1>penumbra</h1><p>See <a href="/report">/report</a>, <a href="/shadows">/shadows</a>, <a href="/mismatches">/mismatches</a>, <a href="/metrics">/metrics</a>.</p>\n'
}
