import type { ResponseFormat } from './format.js'

/**
 * Any JSON: the generic structural diff only. The whole body is one instance, which disagrees
 * when there is any (non-noisy) difference, status and headers included.
 */
export const json: ResponseFormat = {
  name: 'json',
  rules: [],
  detect: () => true,
  // No instance structure: the comparator's whole-body fallback applies.
  summarise: () => false
}
