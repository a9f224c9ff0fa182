// The status page's views of other capabilities (experiments, canary, quality, LLM, chaos …),
// one file each (status-view-<room>.ts). A view's script runs after the page's own and calls
// `window.penumbraStatus.view({ id, title, url, render (data, box) })`; the page polls `url`
// (relative to the page, e.g. 'experiments') with the admin token and calls `render` with the
// parsed JSON when it changed; a 404 (or a 403: switched off) hides the view. Helpers on
// `window.penumbraStatus`: el(tag, attrs, ...children) (text via attrs.text, never innerHTML),
// clear, pct, ms, num, stat, timeOf.
// Same constraints as the page's script: plain ES5, no template literals, no backslash escapes.

import { EXPERIMENTS_VIEW } from './status-view-experiments.js'
import { llmStatusView } from './status-view-llm.js'
import { qualityView } from './status-view-quality.js'
import { chaosView } from './status-view-chaos.js'
import { DRIFT_VIEW } from './status-view-drift.js'
import { canaryStatusView } from './status-view-canary.js'

/** One view: its CSS (appended to the page's) and its script. */
export interface StatusView {
  readonly css: string
  readonly js: string
}

/** The views, in page order. */
export const STATUS_VIEWS: readonly StatusView[] = [
  llmStatusView,
  canaryStatusView,
  qualityView,
  DRIFT_VIEW,
  EXPERIMENTS_VIEW,
  chaosView
]
